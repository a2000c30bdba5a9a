// ULP distance between IEEE floats: map each bit pattern to an ordered integer (sign-magnitude →
// two's-complement-like ordinal) so adjacent representable values differ by 1 and ±0 coincide.

const f32 = new Float32Array(1)
const i32 = new Int32Array(f32.buffer)
const f64 = new Float64Array(1)
const u32 = new Uint32Array(f64.buffer)
const i64 = new BigInt64Array(f64.buffer)

/** Index of the high 32-bit word of a float64 in a Uint32Array view (platform byte order). */
export const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0
/** Index of the low 32-bit word. */
export const LO = 1 - HI

const TWO32 = 4294967296
const MAG_BIGINT = 0x7fffffffffffffffn

/** Ordinal of a float32 bit pattern (given as int32): -0 and +0 both map to 0. */
export function ordered32(bits: number): number {
  // `0 -` rather than unary minus so -0 becomes +0 (keeps equality tests simple)
  return bits < 0 ? 0 - (bits & 0x7fffffff) : bits
}

/**
 * ULP distance between two float32 values (inputs are rounded to float32 first).
 * NaN → Infinity unless both are NaN (then 0). Infinities are ordinary ordinals here
 * (+Inf is 1 ULP above the largest finite float32); compareValues treats them separately.
 */
export function ulpDistance32(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity
  f32[0] = a
  const oa = ordered32(i32[0]!)
  f32[0] = b
  const ob = ordered32(i32[0]!)
  return Math.abs(oa - ob)
}

/**
 * ULP distance between two float64 values given as (hi, lo) unsigned 32-bit words. Pure Number
 * math so the hot loop over a Float64Array allocates nothing; exact whenever the result < 2^53.
 */
export function ulpDistance64Words(hiA: number, loA: number, hiB: number, loB: number): number {
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

/** ULP distance between two float64 values (as a Number; exact when < 2^53). NaN as in ulpDistance32. */
export function ulpDistance64(a: number, b: number): number {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b) ? 0 : Infinity
  f64[0] = a
  const hiA = u32[HI]!
  const loA = u32[LO]!
  f64[0] = b
  return ulpDistance64Words(hiA, loA, u32[HI]!, u32[LO]!)
}

/** Exact ULP distance between two float64 values via the BigInt64 view (reference; allocates). */
export function ulpDistance64Big(a: number, b: number): bigint {
  if (Number.isNaN(a) || Number.isNaN(b)) throw new RangeError('ulpDistance64Big: NaN has no ULP position')
  f64[0] = a
  const ia = i64[0]!
  f64[0] = b
  const ib = i64[0]!
  const oa = ia < 0n ? -(ia & MAG_BIGINT) : ia
  const ob = ib < 0n ? -(ib & MAG_BIGINT) : ib
  const d = oa - ob
  return d < 0n ? -d : d
}
