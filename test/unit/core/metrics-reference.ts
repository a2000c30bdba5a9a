// Reference for the differential test (metrics-differential.test.ts): a verbatim copy of
// src/core/metrics.ts and the ulp.ts helpers it uses as of commit c3d39ed, before the compare
// kernel was rewritten for speed (issue 28). Do not optimize or edit: it is the definition the
// fast kernel is checked against, bit for bit (sums within the bound documented in metrics.ts).

import type {TensorValues, Tolerance} from '../../../src/core/types.js'

// --- from src/core/ulp.ts (c3d39ed) ---

/** Index of the high 32-bit word of a float64 in a Uint32Array view (platform byte order). */
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0
/** Index of the low 32-bit word. */
const LO = 1 - HI

/** Ordinal of a float32 bit pattern (given as int32): -0 and +0 both map to 0. */
function ordered32(bits: number): number {
  // `0 -` rather than unary minus so -0 becomes +0 (keeps equality tests simple)
  return bits < 0 ? 0 - (bits & 0x7fffffff) : bits
}

/**
 * ULP distance between two float64 values given as (hi, lo) unsigned 32-bit words. Pure Number
 * math so the hot loop over a Float64Array allocates nothing; exact whenever the result < 2^53.
 */
function ulpDistance64Words(hiA: number, loA: number, hiB: number, loB: number): number {
  const negA = hiA >= 0x80000000
  const negB = hiB >= 0x80000000
  const mhA = negA ? hiA - 0x80000000 : hiA
  const mhB = negB ? hiB - 0x80000000 : hiB
  if (negA === negB) {
    // same side of zero: difference of magnitudes, each part exact, one rounding at the end
    return Math.abs((mhA - mhB) * TWO32 + (loA - loB))
  }
  // opposite sides: the distance runs through zero, so it is the sum of both magnitudes
  return mhA * TWO32 + loA + (mhB * TWO32 + loB)
}

// --- src/core/metrics.ts (c3d39ed), from its imports on ---
export interface TensorMetrics {
  count: number
  max_abs: number
  max_rel: number
  mismatches: number
  mismatch_fraction: number
  max_ulp: number
  p99_ulp: number
  rel_l2: number
  cosine: number
  nan: number
  inf: number
  signed_zero_only: number
  shape_mismatch: boolean
  within_tolerance: boolean
}

const TWO32 = 4294967296

/** Keeps the k largest values pushed; its minimum is then the k-th largest. */
class TopK {
  private readonly heap: Float64Array
  private size = 0
  constructor(private readonly k: number) {
    this.heap = new Float64Array(k)
  }

  push(v: number): void {
    const h = this.heap
    if (this.size < this.k) {
      let i = this.size++
      while (i > 0) {
        const p = (i - 1) >> 1
        if (h[p]! <= v) break
        h[i] = h[p]!
        i = p
      }
      h[i] = v
    } else if (v > h[0]!) {
      let i = 0
      const n = this.size
      for (;;) {
        const l = 2 * i + 1
        if (l >= n) break
        const r = l + 1
        const c = r < n && h[r]! < h[l]! ? r : l
        if (h[c]! >= v) break
        h[i] = h[c]!
        i = c
      }
      h[i] = v
    }
  }

  /** k-th largest, treating every value never pushed as 0. */
  kth(): number {
    return this.size < this.k ? 0 : this.heap[0]!
  }
}

/** Heap size for the nearest-rank p99: the (n - ceil(0.99 n) + 1)-th largest value. */
function p99Keep(n: number): number {
  const rank = Math.floor((99 * n + 99) / 100) // ceil(0.99 n) in integer arithmetic
  return Math.max(1, n - rank + 1)
}

/** Running state shared by the per-dtype loops (one object per call, fields are numbers). */
class Acc {
  maxAbs = 0
  maxRel = 0
  mismatches = 0
  maxUlp = 0
  nan = 0
  inf = 0
  signedZero = 0
  sdd = 0 // Σ (a-b)²
  saa = 0 // Σ a²
  sbb = 0 // Σ b²
  sab = 0 // Σ a·b
  readonly top: TopK
  constructor(readonly count: number) {
    this.top = new TopK(p99Keep(count))
  }

  /** A position that is a mismatch with unbounded error (NaN vs number, Inf vs other). */
  unbounded(): void {
    this.mismatches++
    this.maxAbs = Infinity
    this.maxRel = Infinity
    this.maxUlp = Infinity
    this.top.push(Infinity)
  }

  /** A position where both values are finite and differ by d (> 0) and u ULPs. */
  differ(a: number, b: number, d: number, u: number, tol: Tolerance): void {
    const ab = Math.abs(b)
    if (d > this.maxAbs) this.maxAbs = d
    const rel = ab === 0 ? Infinity : d / ab
    if (rel > this.maxRel) this.maxRel = rel
    if (u > this.maxUlp) this.maxUlp = u
    this.top.push(u)
    if (d > tol.atol + tol.rtol * ab) this.mismatches++
    this.sdd += d * d
    this.saa += a * a
    this.sbb += b * b
    this.sab += a * b
  }

  finish(): TensorMetrics {
    const {sdd, saa, sbb, sab, count} = this
    let relL2: number
    if (sbb === 0) relL2 = sdd === 0 ? 0 : Infinity
    else relL2 = Math.sqrt(sdd) / Math.sqrt(sbb)
    let cosine: number
    if (saa === 0 && sbb === 0) cosine = 1
    else if (saa === 0 || sbb === 0) cosine = 0
    else {
      // sqrt of the product rounds once (cos of parallel vectors is exactly ±1); fall back on overflow/underflow
      const den = saa * sbb
      const norm = den > 0 && den < Infinity ? Math.sqrt(den) : Math.sqrt(saa) * Math.sqrt(sbb)
      cosine = Math.min(1, Math.max(-1, sab / norm))
    }
    return {
      count,
      max_abs: this.maxAbs,
      max_rel: this.maxRel,
      mismatches: this.mismatches,
      mismatch_fraction: count === 0 ? 0 : this.mismatches / count,
      max_ulp: this.maxUlp,
      p99_ulp: this.top.kth(),
      rel_l2: relL2,
      cosine,
      nan: this.nan,
      inf: this.inf,
      signed_zero_only: this.signedZero,
      shape_mismatch: false,
      within_tolerance: this.mismatches === 0,
    }
  }
}

function isInf(v: number): boolean {
  return v === Infinity || v === -Infinity
}

/** Handles a pair where a !== b and at least one is non-finite. */
function nonFinitePair(acc: Acc, a: number, b: number): void {
  if (isInf(a) || isInf(b)) acc.inf++
  if (Number.isNaN(a) || Number.isNaN(b)) {
    acc.nan++
    if (Number.isNaN(a) && Number.isNaN(b)) return // same NaN position in both runs: equal
  }
  acc.unbounded()
}

function compareF32(x: Float32Array, y: Float32Array, tol: Tolerance): TensorMetrics {
  const n = x.length
  const xi = new Int32Array(x.buffer, x.byteOffset, n)
  const yi = new Int32Array(y.buffer, y.byteOffset, n)
  const acc = new Acc(n)
  let saa = 0
  let sbb = 0
  let sab = 0
  for (let i = 0; i < n; i++) {
    const a = x[i]!
    const b = y[i]!
    if (a === b) {
      if (a === 0) {
        if (xi[i] !== yi[i]) acc.signedZero++
      } else if (a - a !== 0) {
        acc.inf++ // same infinity on both sides
        continue
      }
      saa += a * a
      sbb += b * b
      sab += a * b
      continue
    }
    if (a - a !== 0 || b - b !== 0) {
      nonFinitePair(acc, a, b)
      continue
    }
    acc.differ(a, b, Math.abs(a - b), Math.abs(ordered32(xi[i]!) - ordered32(yi[i]!)), tol)
  }
  acc.saa += saa
  acc.sbb += sbb
  acc.sab += sab
  return acc.finish()
}

function compareF64(x: Float64Array, y: Float64Array, tol: Tolerance): TensorMetrics {
  const n = x.length
  const xw = new Uint32Array(x.buffer, x.byteOffset, 2 * n)
  const yw = new Uint32Array(y.buffer, y.byteOffset, 2 * n)
  const acc = new Acc(n)
  let saa = 0
  let sbb = 0
  let sab = 0
  for (let i = 0; i < n; i++) {
    const a = x[i]!
    const b = y[i]!
    if (a === b) {
      if (a === 0) {
        if (xw[2 * i + HI] !== yw[2 * i + HI]) acc.signedZero++
      } else if (a - a !== 0) {
        acc.inf++
        continue
      }
      saa += a * a
      sbb += b * b
      sab += a * b
      continue
    }
    if (a - a !== 0 || b - b !== 0) {
      nonFinitePair(acc, a, b)
      continue
    }
    const u = ulpDistance64Words(xw[2 * i + HI]!, xw[2 * i + LO]!, yw[2 * i + HI]!, yw[2 * i + LO]!)
    acc.differ(a, b, Math.abs(a - b), u, tol)
  }
  acc.saa += saa
  acc.sbb += sbb
  acc.sab += sab
  // float64 squares can overflow or underflow; redo the norms scaled only when that may have happened
  const TINY = 2 ** -900
  if (!Number.isFinite(acc.sdd + acc.saa + acc.sbb + acc.sab) || acc.saa < TINY || acc.sbb < TINY) {
    scaledNorms(x, y, acc)
  }
  return acc.finish()
}

/** Recomputes the norm sums over positions finite in both, scaled by a power of two near 1/max. */
function scaledNorms(x: Float64Array, y: Float64Array, acc: Acc): void {
  let m = 0
  for (let i = 0; i < x.length; i++) {
    const a = x[i]!
    const b = y[i]!
    if (a - a !== 0 || b - b !== 0) continue
    const v = Math.max(Math.abs(a), Math.abs(b))
    if (v > m) m = v
  }
  acc.sdd = acc.saa = acc.sbb = acc.sab = 0
  if (m === 0) return
  // split 2^-e into two factors so neither overflows (e spans -1074..1023)
  const k = -Math.floor(Math.log2(m))
  const s1 = 2 ** Math.trunc(k / 2)
  const s2 = 2 ** (k - Math.trunc(k / 2))
  let sdd = 0
  let saa = 0
  let sbb = 0
  let sab = 0
  for (let i = 0; i < x.length; i++) {
    const a0 = x[i]!
    const b0 = y[i]!
    if (a0 - a0 !== 0 || b0 - b0 !== 0) continue
    const a = a0 * s1 * s2
    const b = b0 * s1 * s2
    const d = a - b
    sdd += d * d
    saa += a * a
    sbb += b * b
    sab += a * b
  }
  acc.sdd = sdd
  acc.saa = saa
  acc.sbb = sbb
  acc.sab = sab
}

const EXACT: Tolerance = {rtol: 0, atol: 0}

/** Integer pair (as exact-enough Numbers): exact compare, ULP = integer difference. */
function intPair(acc: Acc, a: number, b: number, d: number): void {
  if (d === 0) {
    acc.saa += a * a
    acc.sbb += b * b
    acc.sab += a * b
    return
  }
  acc.differ(a, b, d, d, EXACT)
}

function compareSmallInt(x: Int32Array | Uint8Array, y: Int32Array | Uint8Array): TensorMetrics {
  const acc = new Acc(x.length)
  for (let i = 0; i < x.length; i++) {
    const a = x[i]!
    const b = y[i]!
    intPair(acc, a, b, Math.abs(a - b))
  }
  return acc.finish()
}

function compareI64(x: BigInt64Array, y: BigInt64Array): TensorMetrics {
  const n = x.length
  // read through 32-bit words: reading BigInt64Array elements would allocate a BigInt each
  const xw = new Uint32Array(x.buffer, x.byteOffset, 2 * n)
  const yw = new Uint32Array(y.buffer, y.byteOffset, 2 * n)
  const acc = new Acc(n)
  for (let i = 0; i < n; i++) {
    const ah = xw[2 * i + HI]! | 0
    const al = xw[2 * i + LO]!
    const bh = yw[2 * i + HI]! | 0
    const bl = yw[2 * i + LO]!
    // difference from the word differences: exact while |a - b| < 2^53
    const d = Math.abs((ah - bh) * TWO32 + (al - bl))
    intPair(acc, ah * TWO32 + al, bh * TWO32 + bl, d)
  }
  return acc.finish()
}

function shapeMismatch(actual: TensorValues, expected: TensorValues): TensorMetrics {
  const count = Math.max(actual.data.length, expected.data.length)
  return {
    count,
    max_abs: Infinity,
    max_rel: Infinity,
    mismatches: count,
    mismatch_fraction: 1,
    max_ulp: Infinity,
    p99_ulp: Infinity,
    rel_l2: Infinity,
    cosine: 0,
    nan: 0,
    inf: 0,
    signed_zero_only: 0,
    shape_mismatch: true,
    within_tolerance: false,
  }
}

function sameShape(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Compares `actual` against the reference `expected` (see the semantics at the top of the file). */
export function compareValuesReference(actual: TensorValues, expected: TensorValues, tol: Tolerance): TensorMetrics {
  const x = actual.data
  const y = expected.data
  if (
    actual.dtype !== expected.dtype ||
    !sameShape(actual.shape, expected.shape) ||
    x.length !== y.length ||
    x.constructor !== y.constructor
  ) {
    return shapeMismatch(actual, expected)
  }
  if (x instanceof Float32Array) return compareF32(x, y as Float32Array, tol)
  if (x instanceof Float64Array) return compareF64(x, y as Float64Array, tol)
  if (x instanceof BigInt64Array) return compareI64(x, y as BigInt64Array)
  return compareSmallInt(x, y as Int32Array | Uint8Array)
}
