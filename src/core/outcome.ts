// Compares what two runs achieved (final and per-epoch loss/accuracy), and the small statistics
// used when several repeats per environment exist: summary, Welch's t interval, Student t quantile.

import type {EpochOutcome, RunOutcome} from './types.js'

/** `delta` = b - a when both sides have a value. */
export interface Delta {
  a: number | null
  b: number | null
  delta: number | null
}

export interface EpochDelta {
  epoch: number
  train_loss: Delta
  val_loss: Delta
  val_accuracy: Delta
}

export interface OutcomeComparison {
  status: {a: RunOutcome['status']; b: RunOutcome['status']}
  steps: {a: number; b: number}
  final: {val_accuracy: Delta; val_loss: Delta; train_loss: Delta}
  /** Union of epoch indices, ascending; a side without the epoch has nulls. */
  epochs: EpochDelta[]
  /** Same status/error, step count, epochs and every loss/accuracy value (timings ignored). */
  identical: boolean
}

function delta(a: number | null | undefined, b: number | null | undefined): Delta {
  const x = a ?? null
  const y = b ?? null
  return {a: x, b: y, delta: x !== null && y !== null ? y - x : null}
}

function same(d: Delta): boolean {
  return d.a === d.b
}

/** Compares run `b` against run `a`. */
export function compareOutcomes(a: RunOutcome, b: RunOutcome): OutcomeComparison {
  const byEpoch = (o: RunOutcome): Map<number, EpochOutcome> => {
    const m = new Map<number, EpochOutcome>()
    for (const e of o.epochs) if (!m.has(e.epoch)) m.set(e.epoch, e)
    return m
  }
  const ea = byEpoch(a)
  const eb = byEpoch(b)
  const ids = [...new Set([...ea.keys(), ...eb.keys()])].sort((x, y) => x - y)
  const epochs = ids.map((epoch): EpochDelta => {
    const x = ea.get(epoch)
    const y = eb.get(epoch)
    return {
      epoch,
      train_loss: delta(x?.train_loss, y?.train_loss),
      val_loss: delta(x?.val_loss, y?.val_loss),
      val_accuracy: delta(x?.val_accuracy, y?.val_accuracy),
    }
  })
  const final = {
    val_accuracy: delta(a.final.val_accuracy, b.final.val_accuracy),
    val_loss: delta(a.final.val_loss, b.final.val_loss),
    train_loss: delta(a.final.train_loss, b.final.train_loss),
  }
  const identical =
    a.status === b.status &&
    a.error?.type === b.error?.type &&
    a.error?.message === b.error?.message &&
    a.steps === b.steps &&
    ea.size === eb.size &&
    ids.every((e) => ea.has(e) && eb.has(e) && ea.get(e)!.last_step === eb.get(e)!.last_step) &&
    epochs.every((e) => same(e.train_loss) && same(e.val_loss) && same(e.val_accuracy)) &&
    same(final.val_accuracy) &&
    same(final.val_loss) &&
    same(final.train_loss)
  return {status: {a: a.status, b: b.status}, steps: {a: a.steps, b: b.steps}, final, epochs, identical}
}

export interface Summary {
  n: number
  mean: number | null
  /** Sample standard deviation (n - 1); null when n < 2. */
  sd: number | null
  min: number | null
  max: number | null
}

export function summarize(values: number[]): Summary {
  const n = values.length
  if (n === 0) return {n, mean: null, sd: null, min: null, max: null}
  let sum = 0
  let min = Infinity
  let max = -Infinity
  for (const v of values) {
    sum += v
    if (v < min) min = v
    if (v > max) max = v
  }
  const mean = sum / n
  let ss = 0
  for (const v of values) ss += (v - mean) * (v - mean) // two-pass: no cancellation
  return {n, mean, sd: n < 2 ? null : Math.sqrt(ss / (n - 1)), min, max}
}

export interface WelchResult {
  /** mean(b) - mean(a); null when either sample is empty. */
  diff: number | null
  se: number | null
  /** Welch–Satterthwaite degrees of freedom (na + nb - 2 when both variances are 0). */
  df: number | null
  t: number | null
  /** Two-sided p-value; null when undefined (n < 2 or se = 0). */
  p_value: number | null
  ci95: [number, number] | null
  /** The 95% interval excludes 0 (with zero variance: any nonzero difference). */
  significant: boolean
}

/** Welch's unequal-variance comparison of mean(b) - mean(a). Needs n >= 2 on both sides for an interval. */
export function welch(a: number[], b: number[]): WelchResult {
  const sa = summarize(a)
  const sb = summarize(b)
  const diff = sa.mean !== null && sb.mean !== null ? sb.mean - sa.mean : null
  if (diff === null || sa.sd === null || sb.sd === null) {
    return {diff, se: null, df: null, t: null, p_value: null, ci95: null, significant: false}
  }
  const va = (sa.sd * sa.sd) / sa.n
  const vb = (sb.sd * sb.sd) / sb.n
  const se = Math.sqrt(va + vb)
  if (se === 0) {
    // both samples constant: the difference is exact
    return {diff, se: 0, df: sa.n + sb.n - 2, t: null, p_value: null, ci95: [diff, diff], significant: diff !== 0}
  }
  const df = (va + vb) ** 2 / ((va * va) / (sa.n - 1) + (vb * vb) / (sb.n - 1))
  const q = tQuantile(0.975, df)
  const ci95: [number, number] = [diff - q * se, diff + q * se]
  const t = diff / se
  return {diff, se, df, t, p_value: 2 * tUpperTail(Math.abs(t), df), ci95, significant: ci95[0] > 0 || ci95[1] < 0}
}

// ---- Student t distribution ------------------------------------------------------------
// Quantiles by bisection on the exact CDF (regularized incomplete beta), so accuracy does not
// hinge on an approximation formula and non-integer Welch df work; for df > 1000 the
// Cornish–Fisher expansion around the normal quantile is accurate to ~1e-11.

function lnGamma(x: number): number {
  // Lanczos approximation (g = 7, n = 9), ~1e-15 relative
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ]
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x)
  const z = x - 1
  let s = c[0]!
  for (let i = 1; i < 9; i++) s += c[i]! / (z + i)
  const t = z + 7.5
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(s)
}

/** Continued fraction for the incomplete beta (modified Lentz, Numerical Recipes betacf). */
function betacf(a: number, b: number, x: number): number {
  const FPMIN = 1e-300
  const qab = a + b
  const qap = a + 1
  const qam = a - 1
  let c = 1
  let d = 1 - (qab * x) / qap
  if (Math.abs(d) < FPMIN) d = FPMIN
  d = 1 / d
  let h = d
  for (let m = 1; m <= 2000; m++) {
    const m2 = 2 * m
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2))
    d = 1 + aa * d
    if (Math.abs(d) < FPMIN) d = FPMIN
    c = 1 + aa / c
    if (Math.abs(c) < FPMIN) c = FPMIN
    d = 1 / d
    h *= d * c
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2))
    d = 1 + aa * d
    if (Math.abs(d) < FPMIN) d = FPMIN
    c = 1 + aa / c
    if (Math.abs(c) < FPMIN) c = FPMIN
    d = 1 / d
    const del = d * c
    h *= del
    if (Math.abs(del - 1) < 1e-15) break
  }
  return h
}

/** Regularized incomplete beta I_x(a, b). */
function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x))
  if (x < (a + 1) / (a + b + 2)) return (front * betacf(a, b, x)) / a
  return 1 - (front * betacf(b, a, 1 - x)) / b
}

/** P(T > t) for t >= 0. */
export function tUpperTail(t: number, df: number): number {
  if (t <= 0) return 0.5
  if (!Number.isFinite(df)) return normalUpperTail(t)
  return 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5)
}

/** Regularized upper incomplete gamma Q(a, x) (series below a + 1, continued fraction above). */
function gammaQ(a: number, x: number): number {
  if (x <= 0) return 1
  const front = Math.exp(a * Math.log(x) - x - lnGamma(a))
  if (x < a + 1) {
    let ap = a
    let del = 1 / a
    let sum = del
    for (let n = 0; n < 1000; n++) {
      ap++
      del *= x / ap
      sum += del
      if (Math.abs(del) < Math.abs(sum) * 1e-16) break
    }
    return 1 - sum * front
  }
  const FPMIN = 1e-300
  let b = x + 1 - a
  let c = 1 / FPMIN
  let d = 1 / b
  let h = d
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a)
    b += 2
    d = an * d + b
    if (Math.abs(d) < FPMIN) d = FPMIN
    c = b + an / c
    if (Math.abs(c) < FPMIN) c = FPMIN
    d = 1 / d
    const del = d * c
    h *= del
    if (Math.abs(del - 1) < 1e-16) break
  }
  return front * h
}

/** P(Z > z) for a standard normal Z. */
export function normalUpperTail(z: number): number {
  const tail = 0.5 * gammaQ(0.5, (z * z) / 2)
  return z >= 0 ? tail : 1 - tail
}

/** Standard normal quantile: Acklam's rational approximation (1.2e-9) plus one Halley step on the exact CDF. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN
  if (p > 0.5) return -normalQuantile(1 - p) // 1 - p is exact here
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239]
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1]
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783]
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416]
  let x: number
  if (p < 0.02425) {
    const q = Math.sqrt(-2 * Math.log(p))
    x =
      (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) /
      ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1)
  } else {
    const q = p - 0.5
    const r = q * q
    x =
      ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) /
      (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1)
  }
  // Halley refinement: lower-tail CDF at x (x <= 0) is the upper tail at -x
  const e = normalUpperTail(-x) - p
  const u = e * Math.sqrt(2 * Math.PI) * Math.exp((x * x) / 2)
  return x - u / (1 + (x * u) / 2)
}

/** Cornish–Fisher expansion of the t quantile in powers of 1/df (Abramowitz & Stegun 26.7.5). */
function tCornishFisher(z: number, df: number): number {
  const z2 = z * z
  const g1 = ((z2 + 1) * z) / 4
  const g2 = (((5 * z2 + 16) * z2 + 3) * z) / 96
  const g3 = ((((3 * z2 + 19) * z2 + 17) * z2 - 15) * z) / 384
  const g4 = (((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z) / 92160
  return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df
}

/** Student t quantile: the t with P(T <= t) = p for `df` degrees of freedom (df > 0, may be fractional). */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) return p === 0 ? -Infinity : p === 1 ? Infinity : NaN
  if (p < 0.5) return -tQuantile(1 - p, df)
  if (p === 0.5) return 0
  if (!Number.isFinite(df)) return normalQuantile(p)
  if (df > 1000) return tCornishFisher(normalQuantile(p), df)
  const target = 1 - p
  let lo = 0
  let hi = 1
  while (tUpperTail(hi, df) > target) {
    lo = hi
    hi *= 2
    if (hi > 1e300) return Infinity
  }
  for (let i = 0; i < 200 && hi - lo > 1e-13 * hi; i++) {
    const mid = 0.5 * (lo + hi)
    if (tUpperTail(mid, df) > target) lo = mid
    else hi = mid
  }
  return 0.5 * (lo + hi)
}
