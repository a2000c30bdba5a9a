import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {DEFAULT_SYNTHETIC, generateSynthetic, mulberry32} from '../../../src/core/data.js'
import {parseCsvRecords, tabularFromCsv, CsvError} from '../../../src/core/csv.js'

describe('synthetic data', () => {
  test('mulberry32 sequence is pinned: changing it would change the data of every audit', () => {
    const r = mulberry32(1)
    // Pinned from bryc's public-domain reference snippet, run with seed 1.
    assert.equal(r(), 0.6270739405881613)
    assert.equal(r(), 0.002735721180215478)
  })
  test('same seed → identical bytes; another seed → different data', () => {
    const spec = {...DEFAULT_SYNTHETIC, rows: 300}
    const a = generateSynthetic(spec)
    const b = generateSynthetic(spec)
    assert.deepEqual(Buffer.from(a.numeric.buffer), Buffer.from(b.numeric.buffer))
    assert.deepEqual(a.label, b.label)
    const c = generateSynthetic({...spec, seed: spec.seed + 1})
    assert.notDeepEqual(Buffer.from(a.numeric.buffer), Buffer.from(c.numeric.buffer))
  })
  test('categories and labels are in range and every class occurs', () => {
    const d = generateSynthetic({...DEFAULT_SYNTHETIC, rows: 1000})
    const card = d.categoricalColumns.map((c) => c.cardinality)
    for (const [i, v] of d.categorical.entries()) assert.ok(v >= 0n && v < BigInt(card[i % card.length]!))
    const seen = new Set([...d.label].map(Number))
    assert.deepEqual([...seen].sort(), [0, 1, 2])
  })
})

describe('csv', () => {
  test('quoted fields, CRLF and doubled quotes', () => {
    assert.deepEqual(parseCsvRecords('a,"b,c","d""e"\r\n1,2,3\n'), [
      ['a', 'b,c', 'd"e'],
      ['1', '2', '3'],
    ])
  })
  test('numeric columns become float32, others categorical, label indexed by first appearance', () => {
    const rows = ['x,color,y', ...Array.from({length: 12}, (_, i) => `${i / 2},${i % 3 === 0 ? 'red' : 'blue'},${i % 2 ? 'yes' : 'no'}`)]
    const d = tabularFromCsv(rows.join('\n'), 'y', 'toy.csv')
    assert.deepEqual(d.numericColumns, ['x'])
    assert.deepEqual(d.categoricalColumns, [{name: 'color', cardinality: 2}])
    assert.equal(d.classes, 2)
    assert.equal(d.label[0], 0n) // "no" came first
    assert.equal(d.numeric[3], 1.5)
    assert.equal(d.source, 'csv:toy.csv')
  })
  test('clear errors for a missing label column and ragged rows', () => {
    assert.throws(() => tabularFromCsv('a,b\n1,2\n', 'y', 'f'), /no column named "y"/)
    const ragged = ['a,y', ...Array.from({length: 11}, () => '1,0'), '1'].join('\n')
    assert.throws(() => tabularFromCsv(ragged, 'y', 'f'), CsvError)
  })
})
