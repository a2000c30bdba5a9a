// Seeded data for the canary workloads (cnn images, lstm series windows, attention token
// sequences), built on data.ts's mulberry32 + Box–Muller so that every target trains on the same
// bytes by construction. Each generator is documented in docs/artifacts.md; changing one changes
// the golden sha256 pinned in test/unit/core/workload-data.test.ts, on purpose.

import {mulberry32, normals} from './data.js'

export interface ImageSpec {
  seed: number
  rows: number
  classes: number
  /** height = width */
  size: number
  /** standard deviation of the per-pixel noise, in units of full intensity */
  noise: number
}

export interface ImageData {
  workload: 'cnn'
  rows: number
  channels: 3
  height: number
  width: number
  classes: number
  source: string
  /** row-major uint8 [rows, 3, height, width] */
  images: Uint8Array
  label: BigInt64Array
}

export interface SeriesSpec {
  seed: number
  rows: number
  /** time steps per input window; the target is the value right after the window */
  window: number
  /** seasonal periods in steps, each a sine with a seeded phase */
  periods: readonly number[]
  amplitudes: readonly number[]
  noise: number
}

export interface SeriesData {
  workload: 'lstm'
  rows: number
  window: number
  /** the value, then sin and cos of the first period's phase (a time-of-period covariate) */
  features: 3
  source: string
  /** row-major float32 [rows, window, 3]: window r holds the features at steps r … r + window − 1 */
  windows: Float32Array
  /** float32 [rows]: the series at step r + window */
  target: Float32Array
}

export interface TokenSpec {
  seed: number
  rows: number
  seqLen: number
  vocab: number
  classes: number
}

export interface TokenData {
  workload: 'attention'
  rows: number
  seqLen: number
  vocab: number
  classes: number
  source: string
  /** row-major int64 [rows, seqLen] in [0, vocab) */
  tokens: BigInt64Array
  label: BigInt64Array
}

function requireSpec(ok: boolean, what: string): void {
  if (!ok) throw new RangeError(`invalid data spec: ${what}`)
}

/** Labels with every class ⌊rows / classes⌋ or one more times, in a seeded Fisher–Yates order. */
export function balancedLabels(rows: number, classes: number, rand: () => number): BigInt64Array {
  const label = new BigInt64Array(rows)
  for (let r = 0; r < rows; r++) label[r] = BigInt(r % classes)
  for (let r = rows - 1; r > 0; r--) {
    const j = Math.floor(rand() * (r + 1))
    const t = label[r]!
    label[r] = label[j]!
    label[j] = t
  }
  return label
}

/**
 * Images: class k has a colour (3 uniforms in [0.25, 0.75]) and stripes at angle πk/classes with
 * 2 + (k mod 3) cycles per image. Each image draws a phase, a contrast in [0.15, 0.3] and a
 * colour jitter (σ 0.08); each pixel adds noise (σ spec.noise); clamped to [0, 1], × 255, rounded.
 */
export function generateImages(spec: ImageSpec): ImageData {
  requireSpec(Number.isInteger(spec.rows) && spec.rows >= 1, 'rows ≥ 1')
  requireSpec(Number.isInteger(spec.classes) && spec.classes >= 2, 'classes ≥ 2')
  requireSpec(Number.isInteger(spec.size) && spec.size >= 8 && spec.size <= 256, 'size in [8, 256]')
  const rand = mulberry32(spec.seed)
  const normal = normals(rand)
  const {rows, classes, size} = spec
  const colours = Array.from({length: classes * 3}, () => 0.25 + 0.5 * rand())
  const label = balancedLabels(rows, classes, rand)
  const plane = size * size
  const images = new Uint8Array(rows * 3 * plane)
  for (let r = 0; r < rows; r++) {
    const k = Number(label[r])
    const angle = (Math.PI * k) / classes
    const cycles = 2 + (k % 3)
    const phase = 2 * Math.PI * rand()
    const contrast = 0.15 + 0.15 * rand()
    const jitter = [normal() * 0.08, normal() * 0.08, normal() * 0.08]
    const [cos, sin] = [Math.cos(angle) / size, Math.sin(angle) / size]
    for (let c = 0; c < 3; c++) {
      const base = colours[k * 3 + c]! + jitter[c]!
      for (let y = 0; y < size; y++) {
        for (let x = 0; x < size; x++) {
          const along = x * cos + y * sin
          const v = base + contrast * Math.sin(2 * Math.PI * cycles * along + phase) + spec.noise * normal()
          images[(r * 3 + c) * plane + y * size + x] = Math.round(Math.min(1, Math.max(0, v)) * 255)
        }
      }
    }
  }
  return {workload: 'cnn', rows, channels: 3, height: size, width: size, classes, source: `synthetic-images:${spec.seed}`, images, label}
}

/**
 * A seasonal series x_t = Σ amplitude_i · sin(2π t / period_i + phase_i) + noise · N(0, 1) for
 * t = 0 … rows + window − 1 (phases seeded), cut into sliding windows of `window` steps at stride 1,
 * each step carrying x_t, sin(2π t / period_0) and cos(2π t / period_0); the target is the next x.
 * Rows are in time order, so the validation rows (the last ones) forecast the future.
 */
export function generateSeries(spec: SeriesSpec): SeriesData {
  requireSpec(Number.isInteger(spec.rows) && spec.rows >= 1, 'rows ≥ 1')
  requireSpec(Number.isInteger(spec.window) && spec.window >= 2 && spec.window <= 4096, 'window in [2, 4096]')
  requireSpec(
    spec.periods.length >= 1 && spec.periods.length === spec.amplitudes.length && spec.periods.every((p) => p > 0),
    'one amplitude per positive period, at least one',
  )
  const rand = mulberry32(spec.seed)
  const normal = normals(rand)
  const {rows, window} = spec
  const phases = spec.periods.map(() => 2 * Math.PI * rand())
  const length = rows + window
  const features = 3
  const steps = new Float32Array(length * features)
  for (let t = 0; t < length; t++) {
    let v = spec.noise * normal()
    spec.periods.forEach((p, i) => {
      v += spec.amplitudes[i]! * Math.sin((2 * Math.PI * t) / p + phases[i]!)
    })
    const clock = (2 * Math.PI * t) / spec.periods[0]!
    steps.set([v, Math.sin(clock), Math.cos(clock)], t * features)
  }
  const windows = new Float32Array(rows * window * features)
  const target = new Float32Array(rows)
  for (let r = 0; r < rows; r++) {
    windows.set(steps.subarray(r * features, (r + window) * features), r * window * features)
    target[r] = steps[(r + window) * features]!
  }
  return {workload: 'lstm', rows, window, features, source: `synthetic-series:${spec.seed}`, windows, target}
}

/**
 * Token sequences: tokens 0 … classes − 1 are markers, the others filler (uniform). A row of class
 * k holds 2 or 3 copies of marker k and fewer copies (0 … copies − 1) of one other marker, at
 * seeded distinct positions: the class is the majority marker.
 */
export function generateTokens(spec: TokenSpec): TokenData {
  requireSpec(Number.isInteger(spec.rows) && spec.rows >= 1, 'rows ≥ 1')
  requireSpec(Number.isInteger(spec.classes) && spec.classes >= 2, 'classes ≥ 2')
  requireSpec(Number.isInteger(spec.seqLen) && spec.seqLen >= 5 && spec.seqLen <= 1024, 'seqLen in [5, 1024]')
  requireSpec(Number.isInteger(spec.vocab) && spec.vocab > spec.classes, 'vocab > classes')
  const rand = mulberry32(spec.seed)
  const {rows, seqLen, vocab, classes} = spec
  const label = balancedLabels(rows, classes, rand)
  const tokens = new BigInt64Array(rows * seqLen)
  const positions = Array.from({length: seqLen}, (_, i) => i)
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < seqLen; i++) tokens[r * seqLen + i] = BigInt(classes + Math.floor(rand() * (vocab - classes)))
    const k = Number(label[r])
    const copies = 2 + Math.floor(rand() * 2)
    const other = (k + 1 + Math.floor(rand() * (classes - 1))) % classes
    const otherCopies = Math.floor(rand() * copies)
    const markers = [...Array<number>(copies).fill(k), ...Array<number>(otherCopies).fill(other)]
    // Partial Fisher–Yates: the first markers.length entries of `positions` become distinct random slots.
    markers.forEach((m, i) => {
      const j = i + Math.floor(rand() * (seqLen - i))
      const t = positions[i]!
      positions[i] = positions[j]!
      positions[j] = t
      tokens[r * seqLen + positions[i]!] = BigInt(m)
    })
  }
  return {workload: 'attention', rows, seqLen, vocab, classes, source: `synthetic-tokens:${spec.seed}`, tokens, label}
}
