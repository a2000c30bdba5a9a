import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {
  balancedLabels,
  generateImages,
  generateSeries,
  generateTokens,
  type ImageData,
  type SeriesData,
  type TokenData,
} from '../../../src/core/workload-data.js'
import {mulberry32} from '../../../src/core/data.js'
import {generateWorkloadData, isWorkloadName, WORKLOAD_NAMES, WORKLOADS, type WorkloadData} from '../../../src/core/workloads.js'

/** sha256 over every typed array of a generated data set, in a fixed order. */
function digest(d: WorkloadData): string {
  const h = createHash('sha256')
  const arrays: ArrayBufferView[] =
    'workload' in d
      ? d.workload === 'cnn'
        ? [d.images, d.label]
        : d.workload === 'lstm'
          ? [d.windows, d.target]
          : [d.tokens, d.label]
      : [d.numeric, d.categorical, d.label]
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
  return h.digest('hex')
}

function classCounts(label: BigInt64Array, classes: number): number[] {
  const counts = new Array<number>(classes).fill(0)
  for (const v of label) counts[Number(v)]! += 1
  return counts
}

const SMALL_IMAGES = {seed: 7, rows: 50, classes: 10, size: 16, noise: 0.15}
const SMALL_SERIES = {seed: 7, rows: 40, window: 8, periods: [12, 50], amplitudes: [1, 0.5], noise: 0.2}
const SMALL_TOKENS = {seed: 7, rows: 60, seqLen: 12, vocab: 20, classes: 4}

describe('workload data generators', () => {
  test('default data of every workload is pinned: a change here changes every audit of that workload', () => {
    // Pinned from the generators as first written; update only with a deliberate data change.
    const golden: Record<string, string> = {
      mlp: '1fcc3952542a070db65953ac6d418f19dccc9ade0c4cef9794ad8d5bb0aeac87',
      cnn: 'efbd207e189762efdecbdd0d3c9e87de2a01ba8f1da2da06023487c6d5736f02',
      lstm: 'aa947637c341461864ef2264ddecf2a2c5be3e9f12c0c5bff8557247b6013beb',
      attention: '0b92099e8411ed438b7ae8cc55b7588c7f3243a8b68d3e3ee81001e66d86eae1',
    }
    for (const name of WORKLOAD_NAMES) assert.equal(digest(generateWorkloadData(name)), golden[name], name)
  })

  test('same seed → identical bytes; another seed → different bytes', () => {
    const cases: [string, (seed: number) => WorkloadData][] = [
      ['images', (seed) => generateImages({...SMALL_IMAGES, seed})],
      ['series', (seed) => generateSeries({...SMALL_SERIES, seed})],
      ['tokens', (seed) => generateTokens({...SMALL_TOKENS, seed})],
    ]
    for (const [name, gen] of cases) {
      assert.equal(digest(gen(1)), digest(gen(1)), name)
      assert.notEqual(digest(gen(1)), digest(gen(2)), name)
    }
  })

  test('balanced labels: every class ⌊rows / classes⌋ or one more times, shuffled', () => {
    const label = balancedLabels(103, 10, mulberry32(3))
    for (const n of classCounts(label, 10)) assert.ok(n === 10 || n === 11)
    assert.notDeepEqual([...label.slice(0, 10)].map(Number), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  })

  test('images: uint8 [rows, 3, size, size], balanced labels, class means that differ', () => {
    const d: ImageData = generateImages(SMALL_IMAGES)
    assert.equal(d.source, 'synthetic-images:7')
    assert.deepEqual([d.channels, d.height, d.width, d.classes], [3, 16, 16, 10])
    assert.equal(d.images.length, 50 * 3 * 16 * 16)
    assert.deepEqual(classCounts(d.label, 10), new Array(10).fill(5))
    // learnable: the mean red intensity is not the same for every class
    const plane = 16 * 16
    const redMean = new Array<number>(10).fill(0)
    for (let r = 0; r < d.rows; r++) {
      let s = 0
      for (let i = 0; i < plane; i++) s += d.images[r * 3 * plane + i]!
      redMean[Number(d.label[r])]! += s / plane / 5
    }
    assert.ok(Math.max(...redMean) - Math.min(...redMean) > 30, `class means ${redMean}`)
  })

  test('series: windows slide by one step, the target is the next value, covariates are the clock', () => {
    const d: SeriesData = generateSeries(SMALL_SERIES)
    const {rows, window, features} = d
    assert.equal(d.windows.length, rows * window * features)
    assert.equal(d.target.length, rows)
    const at = (r: number, t: number, f: number) => d.windows[(r * window + t) * features + f]!
    for (let r = 0; r + 1 < rows; r++) {
      for (let t = 0; t + 1 < window; t++) for (let f = 0; f < features; f++) assert.equal(at(r + 1, t, f), at(r, t + 1, f))
      assert.equal(d.target[r], at(r + 1, window - 1, 0))
    }
    for (let r = 0; r < rows; r++) {
      const clock = (2 * Math.PI * r) / 12
      assert.equal(at(r, 0, 1), Math.fround(Math.sin(clock)))
      assert.equal(at(r, 0, 2), Math.fround(Math.cos(clock)))
    }
  })

  test('tokens: in [0, vocab), balanced labels, the label is the strict majority marker', () => {
    const d: TokenData = generateTokens(SMALL_TOKENS)
    assert.deepEqual(classCounts(d.label, 4), [15, 15, 15, 15])
    for (let r = 0; r < d.rows; r++) {
      const row = [...d.tokens.slice(r * d.seqLen, (r + 1) * d.seqLen)].map(Number)
      assert.ok(row.every((t) => t >= 0 && t < d.vocab))
      const markers = new Array<number>(d.classes).fill(0)
      for (const t of row) if (t < d.classes) markers[t]! += 1
      const k = Number(d.label[r])
      assert.ok(markers[k]! >= 2)
      assert.ok(
        markers.every((n, j) => j === k || n < markers[k]!),
        `row ${r}: ${markers}`,
      )
    }
  })

  test('invalid specs are refused', () => {
    assert.throws(() => generateImages({...SMALL_IMAGES, size: 4}), RangeError)
    assert.throws(() => generateSeries({...SMALL_SERIES, amplitudes: [1]}), RangeError)
    assert.throws(() => generateTokens({...SMALL_TOKENS, vocab: 4}), RangeError)
    assert.throws(() => generateTokens({...SMALL_TOKENS, seqLen: 4}), RangeError)
  })
})

describe('WORKLOADS table', () => {
  test('the probe workloads, mlp first, each with its metric and direction', () => {
    assert.deepEqual(WORKLOAD_NAMES, ['mlp', 'cnn', 'lstm', 'attention'])
    for (const name of WORKLOAD_NAMES) {
      const w = WORKLOADS[name]
      assert.equal(w.higherIsBetter, w.outcomeMetric === 'val_accuracy', name)
      assert.ok(w.summary.length > 0 && w.layers.length > 0, name)
    }
    assert.equal(WORKLOADS.lstm.outcomeMetric, 'val_rmse')
    assert.ok(isWorkloadName('cnn'))
    assert.ok(!isWorkloadName('toString'))
  })

  test('generateWorkloadData: default spec, tagged with its workload; seed and rows replaceable', () => {
    const d = generateWorkloadData('attention', {rows: 40, seed: 3})
    assert.ok('workload' in d && d.workload === 'attention')
    assert.equal(d.rows, 40)
    assert.equal(d.source, 'synthetic-tokens:3')
    const t = generateWorkloadData('mlp', {rows: 30})
    assert.ok(!('workload' in t))
    assert.equal(t.rows, 30)
    assert.equal(t.source, `synthetic:${WORKLOADS.mlp.data.spec.seed}`)
  })
})
