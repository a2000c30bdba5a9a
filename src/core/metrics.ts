// Numeric comparison of two stored tensors: one pass over the typed arrays, no per-element
// allocation. `expected` is the reference run (torch.testing.assert_close argument order).
// float32 tensors go through a WebAssembly SIMD kernel (compare-kernel.wat, ~7x the JavaScript
// loop, issue 28); the JavaScript loop (compareF32Js) is used where WebAssembly is not available.
// A large float32 compare whose values are in SharedArrayBuffers is split with a second thread
// where one is registered (CompareHelper): the same metrics, the sums within the same bound.
//
// Semantics, chosen for reproducibility auditing:
// - Mismatch: |a - b| > atol + rtol * |b| (b = expected). Integer/bool tensors compare exactly.
// - NaN at the same position in both = equal (equal_nan: both runs produced the same NaN) but is
//   counted in `nan`. NaN vs anything else is a mismatch with abs/rel error and ULP Infinity.
//   `nan` counts positions where either side is NaN; `inf` positions where either side is ±Inf.
// - +Inf vs +Inf (and -Inf vs -Inf) is equal (error 0). Inf vs -Inf or a finite value is a
//   mismatch with abs/rel error and ULP Infinity.
// - -0.0 vs +0.0 is numerically equal (abs 0, ULP 0) but counted in `signed_zero_only`.
// - ULP: ordered-integer distance in the tensor's own float type (ulp.ts), so denormals and
//   crossing zero are counted exactly. For integers the "ULP" is the integer difference.
// - p99_ulp is the nearest-rank 99th percentile over all positions (zeros included); only the
//   top 1% of ULP distances is kept (a min-heap), so memory is ~n/100 doubles. The float32 kernel
//   counts distances below 2^16 in histograms and heaps only the larger ones: the same value.
// - rel_l2 = ||a-b|| / ||b||, cosine = <a,b> / (||a|| ||b||), both over positions finite in
//   BOTH tensors (non-finite positions show up in nan/inf/max_abs instead). rel_l2 is 0 when
//   ||b|| = 0 = ||a-b||, Infinity when only ||b|| = 0. cosine is 1 when both are all-zero, 0
//   when exactly one is. The four float64 sums (Σ(a-b)², Σa², Σb², Σab) are in element order,
//   except in the float32 kernel: two lanes (elements 4k and 4k+2, 4k+1 and 4k+3, each pair added
//   first), the lanes added at the end; a compare split between two threads (CompareHelper) adds
//   the two halves' lane sums at the end. Every other metric of the kernel is the in-order loop's
//   bit for bit. Bound (n elements, to first order in n 2^-53): the in-order sum is within
//   γ(n+1) Σ|terms| of the exact sum and the kernel's within γ(n/4+3), γ(k) = k 2^-53, so the two
//   differ by at most B Σ|terms|, B = (1.25 n + 4) 2^-53; then rel_l2 by at most a relative
//   B + 2^-50 and cosine by an absolute 2B + 2^-50 (Σ|ab| <= ||a|| ||b||). The zero cases above
//   are the same (a sum of squares is 0 only when every term is). This is the worst case, 2.3e-9
//   at n = 2^24; on random data the differences are near √n 2^-53 (bench 3's 2^24 elements:
//   rel_l2 4e-13 relative, cosine 5e-13, and the kernel's sums are the closer to the exact ones;
//   test/unit/core/metrics-differential.test.ts holds the bound).
// - Shape, dtype or length mismatch: shape_mismatch, within_tolerance false, error metrics
//   (max_abs, max_rel, max_ulp, p99_ulp, rel_l2) Infinity, cosine 0, mismatches = count =
//   max(length), mismatch_fraction 1, nan/inf/signed_zero_only 0.
// - An empty tensor compares equal (cosine 1, everything else 0).

import {COMPARE_KERNEL_WASM} from './compare-kernel-wasm.js'
import type {TensorValues, Tolerance} from './types.js'
import {HI, LO, ordered32, ulpDistance64Words} from './ulp.js'

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
  private heap: Float64Array | null = null // allocated at the first push
  size = 0
  constructor(private readonly k: number) {}

  push(v: number): void {
    if (this.heap === null) this.heap = new Float64Array(this.k)
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

  /** The values kept (in heap order). */
  values(): Float64Array {
    return this.heap === null ? new Float64Array(0) : this.heap.slice(0, this.size)
  }

  /** k-th largest, treating every value never pushed as 0. */
  kth(): number {
    return this.size < this.k ? 0 : this.heap![0]!
  }

  /** k-th largest of what was pushed and of `hist` (hist[v] = how many more values equal v, v >= 1). */
  kthWith(hist: (v: number) => number, top: number): number {
    if (this.size >= this.k) return this.heap![0]! // hist values are all below every pushed one
    let need = this.k - this.size
    for (let v = top; v >= 1; v--) {
      need -= hist(v)
      if (need <= 0) return v
    }
    return 0
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

  finish(p99 = this.top.kth()): TensorMetrics {
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
      p99_ulp: p99,
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

/** The float32 loop in JavaScript: used where WebAssembly SIMD is not available. */
function compareF32Js(x: Float32Array, y: Float32Array, tol: Tolerance): TensorMetrics {
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

// --- float32 in WebAssembly SIMD (compare-kernel.wat; the memory layout is described there) ---

const H = 65536 // ULP distances below H are counted in the kernel's histograms, the rest kept in a TopK
const CH = 16384 // elements per chunk copied into the kernel's memory
const STATE = 1048576
const XB = STATE + 256
const YB = XB + 4 * CH
const SPEC = YB + 4 * CH
const BIG = SPEC + 4 * CH

interface Kernel {
  f32: (n: number, atol: number, rtol: number) => void
  u8: Uint8Array
  f64: Float64Array // state as float64
  u32: Uint32Array // the whole memory as 32-bit words
  xs: Float32Array
  ys: Float32Array
}

let kernel: Kernel | null | undefined
let useKernel = true

function loadKernel(): Kernel | null {
  if (kernel !== undefined) return kernel
  try {
    const mod = new WebAssembly.Module(Buffer.from(COMPARE_KERNEL_WASM, 'base64'))
    const inst = new WebAssembly.Instance(mod, {})
    const buf = (inst.exports.memory as WebAssembly.Memory).buffer // fixed size: never grows
    kernel = {
      f32: inst.exports.f32 as Kernel['f32'],
      u8: new Uint8Array(buf),
      f64: new Float64Array(buf, STATE, 32),
      u32: new Uint32Array(buf),
      xs: new Float32Array(buf, XB, CH),
      ys: new Float32Array(buf, YB, CH),
    }
  } catch {
    kernel = null // no WebAssembly SIMD here (e.g. --jitless): the JavaScript loop does it
  }
  return kernel
}

/** Tests only: false makes float32 compares use the JavaScript loop. Returns whether the kernel is in use. */
export function useCompareKernel(on: boolean): boolean {
  useKernel = on
  return on && loadKernel() !== null
}

/**
 * A second thread for large float32 compares (src/app/compare-thread.ts, a worker thread running
 * compareF32Part), registered by the CLI; none: one thread. Only tensors whose values live in
 * SharedArrayBuffers (stored values read from disk, src/artifacts/stored-values.ts) are split.
 */
export interface CompareHelper {
  /**
   * Starts compareF32Part(x, y, tol, begin, end, x.length) on the helper. null: it cannot take
   * it now (not started yet). The returned function waits for the part; null from it: the
   * helper failed, and the caller computes the part itself.
   */
  start(x: Float32Array, y: Float32Array, tol: Tolerance, begin: number, end: number): (() => F32Part | null) | null
}

/** Float32 tensors below this many elements are compared on one thread. */
export const PARALLEL_MIN_ELEMENTS = 1 << 19

let helper: CompareHelper | null = null
let parallelMin = PARALLEL_MIN_ELEMENTS

/** Registers (null: removes) the helper; `minElements` below the default is for tests. */
export function setCompareHelper(h: CompareHelper | null, minElements = PARALLEL_MIN_ELEMENTS): void {
  helper = h
  parallelMin = minElements
}

/**
 * One part of a float32 compare: what compareF32 merges. Maxima and counts merge exactly; the
 * sums add the part's (two lanes, as the kernel's) to the rest's, which keeps them within the
 * bound at the top of this file (each lane adds fewer terms). p99 stays exact: `hist` holds the
 * part's ULP histogram (summed over the kernel's lanes) and `top` its kept distances >= H, each
 * part keeping as many as the whole compare's p99 needs.
 */
export interface F32Part {
  maxAbs: number
  maxRel: number
  mismatches: number
  maxUlp: number
  nan: number
  inf: number
  signedZero: number
  sdd: number
  saa: number
  sbb: number
  sab: number
  hist: Float64Array
  top: Float64Array
}

function compareF32(x: Float32Array, y: Float32Array, tol: Tolerance): TensorMetrics {
  // the kernel leaves equal positions out of the mismatch test only through d = 0 <= atol + rtol |b|
  const k = useKernel && tol.atol >= 0 && tol.rtol >= 0 ? loadKernel() : null
  if (k === null) return compareF32Js(x, y, tol)
  const n = x.length
  const acc = new Acc(n)
  // the second thread takes the upper half (from a chunk boundary), this one the lower
  const mid = Math.floor(n / 2 / CH) * CH
  const split = helper !== null && n >= parallelMin && mid > 0 && isShared(x) && isShared(y)
  const wait = split ? helper!.start(x, y, tol, mid, n) : null
  k.u8.fill(0, STATE, XB) // running state: maxima, counts and sums start at 0
  try {
    runChunks(k, x, y, tol, acc, 0, wait ? mid : n)
    const part = wait ? wait() : null
    if (wait && part === null) runChunks(k, x, y, tol, acc, mid, n) // the helper failed: do its part here
    let top = takeState(k, acc)
    let hist = (v: number) => binCount(k.u32, v)
    if (part !== null) {
      mergePart(acc, part)
      const own = hist
      const ph = part.hist
      hist = (v) => own(v) + (v < ph.length ? ph[v]! : 0)
      top = Math.max(top, ph.length - 1)
    }
    return acc.finish(acc.top.kthWith(hist, top))
  } finally {
    clearHistograms(k)
  }
}

function isShared(a: Float32Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && a.buffer instanceof SharedArrayBuffer
}

/**
 * compareF32Part: elements [begin, end) of a compare of `count` elements, as a part to merge
 * (the helper thread runs it). Throws where the kernel is not available.
 */
export function compareF32Part(x: Float32Array, y: Float32Array, tol: Tolerance, begin: number, end: number, count: number): F32Part {
  const k = loadKernel()
  if (k === null) throw new Error('the compare kernel needs WebAssembly SIMD')
  const acc = new Acc(count)
  k.u8.fill(0, STATE, XB)
  try {
    runChunks(k, x, y, tol, acc, begin, end)
    const top = takeState(k, acc)
    const hist = new Float64Array(top + 1)
    for (let v = 1; v <= top; v++) hist[v] = binCount(k.u32, v)
    const {maxAbs, maxRel, mismatches, maxUlp, nan, inf, signedZero, sdd, saa, sbb, sab} = acc
    return {maxAbs, maxRel, mismatches, maxUlp, nan, inf, signedZero, sdd, saa, sbb, sab, hist, top: acc.top.values()}
  } finally {
    clearHistograms(k)
  }
}

/** Positions at v ULP, over the kernel's four lane histograms. */
function binCount(u32: Uint32Array, v: number): number {
  return u32[v]! + u32[v + H]! + u32[v + 2 * H]! + u32[v + 3 * H]!
}

function mergePart(acc: Acc, p: F32Part): void {
  if (p.maxAbs > acc.maxAbs) acc.maxAbs = p.maxAbs
  if (p.maxRel > acc.maxRel) acc.maxRel = p.maxRel
  if (p.maxUlp > acc.maxUlp) acc.maxUlp = p.maxUlp
  acc.mismatches += p.mismatches
  acc.nan += p.nan
  acc.inf += p.inf
  acc.signedZero += p.signedZero
  acc.sdd += p.sdd
  acc.saa += p.saa
  acc.sbb += p.sbb
  acc.sab += p.sab
  for (const v of p.top) acc.top.push(v)
}

/** Empties the histograms for the next compare: bins 0..top, the highest any lane used. */
function clearHistograms(k: Kernel): void {
  const top = topBin(k)
  for (let l = 0; l < 4; l++) k.u32.fill(0, l * H, l * H + top + 1)
}

function topBin(k: Kernel): number {
  const s = STATE >> 2
  return Math.max(k.u32[s + 12]!, k.u32[s + 13]!, k.u32[s + 14]!, k.u32[s + 15]!)
}

/** Runs the kernel over elements [begin, end) (begin a chunk boundary), adding its set-aside positions to acc. */
function runChunks(k: Kernel, x: Float32Array, y: Float32Array, tol: Tolerance, acc: Acc, begin: number, end: number): void {
  const {u32} = k
  const atol = tol.atol
  const rtol = tol.rtol
  for (let start = begin; start < end; start += CH) {
    const len = Math.min(CH, end - start)
    k.xs.set(x.subarray(start, start + len))
    k.ys.set(y.subarray(start, start + len))
    const padded = (len + 3) & ~3
    if (padded > len) {
      // pad with +0 in both: an equal pair of zeros changes no metric (bin 0 is never read)
      k.xs.fill(0, len, padded)
      k.ys.fill(0, len, padded)
    }
    k.f32(padded, atol, rtol)
    const nspec = u32[(STATE + 192) >> 2]!
    for (let j = 0; j < nspec; j++) {
      const i = start + u32[(SPEC >> 2) + j]!
      specialPair(acc, x[i]!, y[i]!)
    }
    const nbig = u32[(STATE + 196) >> 2]!
    for (let j = 0; j < nbig; j++) {
      const u = u32[(BIG >> 2) + j]!
      if (u > acc.maxUlp) acc.maxUlp = u
      acc.top.push(u)
    }
  }
}

/** Adds the kernel's running state to acc; returns the top histogram bin in use. */
function takeState(k: Kernel, acc: Acc): number {
  // STATE as float64: [0,1] max |a-b|, [2,3] max |a-b|/|b|, [8..15] the sums' two lanes; as 32-bit
  // words: [8..11] the mismatch count (two int64 lanes), [12..15] the top histogram bin in use
  const {u32, f64} = k
  const s = STATE >> 2
  const maxAbs = Math.max(f64[0]!, f64[1]!)
  const maxRel = Math.max(f64[2]!, f64[3]!)
  const top = topBin(k)
  if (maxAbs > acc.maxAbs) acc.maxAbs = maxAbs
  if (maxRel > acc.maxRel) acc.maxRel = maxRel
  if (top > acc.maxUlp) acc.maxUlp = top
  acc.mismatches += u32[s + 8]! + u32[s + 9]! * TWO32 + u32[s + 10]! + u32[s + 11]! * TWO32
  acc.sdd += f64[8]! + f64[9]!
  acc.saa += f64[10]! + f64[11]!
  acc.sbb += f64[12]! + f64[13]!
  acc.sab += f64[14]! + f64[15]!
  return top
}

/** A position the kernel set aside (Inf/NaN on either side, or -0 vs +0): as compareF32Js counts it. */
function specialPair(acc: Acc, a: number, b: number): void {
  if (a === b) {
    if (a === 0) acc.signedZero++
    else acc.inf++ // the same infinity on both sides
    return
  }
  nonFinitePair(acc, a, b)
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
export function compareValues(actual: TensorValues, expected: TensorValues, tol: Tolerance): TensorMetrics {
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
