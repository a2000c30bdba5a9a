// The default training data: a seeded, documented generator so every target trains on the
// same bytes by construction. mulberry32 for uniforms, Box–Muller for normals, a random
// linear teacher plus per-category offsets, argmax → class.

export interface TabularData {
  rows: number
  numericColumns: string[]
  categoricalColumns: {name: string; cardinality: number}[]
  classes: number
  labelColumn: string
  source: string
  /** row-major [rows, numericColumns.length] */
  numeric: Float32Array
  /** row-major [rows, categoricalColumns.length] */
  categorical: BigInt64Array
  label: BigInt64Array
}

export interface SyntheticSpec {
  seed: number
  rows: number
  numeric: number
  cardinalities: number[]
  classes: number
  /** standard deviation of the logit noise: makes the task not perfectly separable */
  noise: number
}

export const DEFAULT_SYNTHETIC: SyntheticSpec = {seed: 20260101, rows: 2048, numeric: 8, cardinalities: [10, 5], classes: 3, noise: 0.5}

/** mulberry32: a 32-bit PRNG with a one-line state update; public domain (Tommy Ettinger). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Box–Muller standard normals from a uniform source (pairs: cos then sin). */
export function normals(rand: () => number): () => number {
  let spare: number | null = null
  return () => {
    if (spare !== null) {
      const s = spare
      spare = null
      return s
    }
    // 1 - u keeps the argument of log in (0, 1].
    const u = 1 - rand()
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u))
    spare = r * Math.sin(2 * Math.PI * v)
    return r * Math.cos(2 * Math.PI * v)
  }
}

export function generateSynthetic(spec: SyntheticSpec = DEFAULT_SYNTHETIC): TabularData {
  const rand = mulberry32(spec.seed)
  const normal = normals(rand)
  const {rows, numeric: nNum, cardinalities, classes} = spec
  // Teacher: weights [classes, nNum] and an offset per (column, category, class).
  const weights = Array.from({length: classes * nNum}, () => normal())
  const offsets = cardinalities.map((card) => Array.from({length: card * classes}, () => normal()))
  const numeric = new Float32Array(rows * nNum)
  const categorical = new BigInt64Array(rows * cardinalities.length)
  const label = new BigInt64Array(rows)
  const logits = new Float64Array(classes)
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < nNum; j++) numeric[r * nNum + j] = normal()
    for (let k = 0; k < classes; k++) {
      let z = 0
      for (let j = 0; j < nNum; j++) z += weights[k * nNum + j]! * numeric[r * nNum + j]!
      logits[k] = z
    }
    cardinalities.forEach((card, c) => {
      const cat = Math.min(card - 1, Math.floor(rand() * card))
      categorical[r * cardinalities.length + c] = BigInt(cat)
      for (let k = 0; k < classes; k++) logits[k]! += offsets[c]![cat * classes + k]!
    })
    let best = 0
    for (let k = 0; k < classes; k++) {
      logits[k]! += spec.noise * normal()
      if (logits[k]! > logits[best]!) best = k
    }
    label[r] = BigInt(best)
  }
  return {
    rows,
    numericColumns: Array.from({length: nNum}, (_, j) => `x${j}`),
    categoricalColumns: cardinalities.map((cardinality, c) => ({name: `c${c}`, cardinality})),
    classes,
    labelColumn: 'y',
    source: `synthetic:${spec.seed}`,
    numeric,
    categorical,
    label,
  }
}
