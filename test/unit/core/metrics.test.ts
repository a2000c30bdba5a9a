// compareValues: special values, tolerance boundary, norms, shapes and integer tensors.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {compareValues} from '../../../src/core/metrics.js'
import type {TensorValues, Tolerance} from '../../../src/core/types.js'

const f32 = (...v: number[]): TensorValues => ({dtype: 'float32', shape: [v.length], data: Float32Array.from(v)})
const f64 = (...v: number[]): TensorValues => ({dtype: 'float64', shape: [v.length], data: Float64Array.from(v)})
const i64 = (...v: bigint[]): TensorValues => ({dtype: 'int64', shape: [v.length], data: BigInt64Array.from(v)})
const TOL: Tolerance = {rtol: 1.3e-6, atol: 1e-5}
const MIN32 = 2 ** -149

describe('special values', () => {
  test('NaN vs NaN is equal but counted', () => {
    const m = compareValues(f32(NaN, 1), f32(NaN, 1), TOL)
    assert.equal(m.mismatches, 0)
    assert.equal(m.nan, 1)
    assert.equal(m.max_abs, 0)
    assert.equal(m.max_ulp, 0)
    assert.equal(m.within_tolerance, true)
  })
  test('NaN vs 1 is a mismatch with infinite error', () => {
    const m = compareValues(f32(NaN, 2), f32(1, 2), TOL)
    assert.equal(m.mismatches, 1)
    assert.equal(m.nan, 1)
    assert.equal(m.max_abs, Infinity)
    assert.equal(m.max_ulp, Infinity)
    assert.equal(m.within_tolerance, false)
    assert.equal(m.rel_l2, 0, 'rel_l2 is over positions finite in both')
  })
  test('+Inf vs +Inf is equal', () => {
    const m = compareValues(f32(Infinity, 1), f32(Infinity, 1), TOL)
    assert.equal(m.mismatches, 0)
    assert.equal(m.inf, 1)
    assert.equal(m.max_abs, 0)
    assert.equal(m.within_tolerance, true)
  })
  test('+Inf vs -Inf and Inf vs finite are mismatches', () => {
    const m = compareValues(f64(Infinity, 3), f64(-Infinity, 3), TOL)
    assert.equal(m.mismatches, 1)
    assert.equal(m.inf, 1)
    assert.equal(m.max_abs, Infinity)
    assert.equal(m.max_ulp, Infinity)
    assert.equal(m.within_tolerance, false)
    const n = compareValues(f32(Infinity), f32(3.4e38), TOL)
    assert.equal(n.mismatches, 1)
    assert.equal(n.max_ulp, Infinity)
  })
  test('-0.0 vs +0.0: ULP 0, signed_zero_only, within tolerance', () => {
    for (const mk of [f32, f64]) {
      const m = compareValues(mk(-0, 1), mk(0, 1), TOL)
      assert.equal(m.max_ulp, 0)
      assert.equal(m.max_abs, 0)
      assert.equal(m.signed_zero_only, 1)
      assert.equal(m.mismatches, 0)
      assert.equal(m.within_tolerance, true)
    }
  })
  test('denormals and nextafter through compareValues', () => {
    assert.equal(compareValues(f32(MIN32), f32(0), TOL).max_ulp, 1)
    assert.equal(compareValues(f32(-MIN32), f32(MIN32), TOL).max_ulp, 2)
    assert.equal(compareValues(f32(1 + 2 ** -23), f32(1), TOL).max_ulp, 1)
    assert.equal(compareValues(f64(5e-324), f64(0), TOL).max_ulp, 1)
    assert.equal(compareValues(f64(-5e-324), f64(5e-324), TOL).max_ulp, 2)
    assert.equal(compareValues(f64(1 + Number.EPSILON), f64(1), TOL).max_ulp, 1)
    assert.equal(compareValues(f64(1 + 3 * Number.EPSILON), f64(1), TOL).max_ulp, 3)
  })
})

describe('tolerance boundary', () => {
  test('exactly at atol + rtol*|b| is within; just beyond is a mismatch', () => {
    const tol = {rtol: 0.25, atol: 0.25} // |b| = 2 → threshold 0.75
    const at = compareValues(f64(2.75), f64(2), tol)
    assert.equal(at.mismatches, 0)
    assert.equal(at.within_tolerance, true)
    assert.equal(at.max_abs, 0.75)
    const beyond = compareValues(f64(2.75 + 4 * Number.EPSILON), f64(2), tol)
    assert.equal(beyond.mismatches, 1)
    assert.equal(beyond.within_tolerance, false)
    const at32 = compareValues(f32(1.5), f32(1), {rtol: 0, atol: 0.5})
    assert.equal(at32.within_tolerance, true)
    const beyond32 = compareValues(f32(1.5 + 2 ** -23), f32(1), {rtol: 0, atol: 0.5})
    assert.equal(beyond32.within_tolerance, false)
  })
  test('relative error uses the reference (expected) magnitude', () => {
    const m = compareValues(f64(3), f64(2), {rtol: 0, atol: 0})
    assert.equal(m.max_rel, 0.5)
    assert.equal(compareValues(f64(1), f64(0), TOL).max_rel, Infinity)
  })
})

describe('norms', () => {
  test('rel_l2 and cosine of known vectors', () => {
    const m = compareValues(f64(1, 2, 3), f64(1, 2, 2), TOL)
    assert.ok(Math.abs(m.rel_l2 - 1 / 3) < 1e-15)
    assert.ok(Math.abs(m.cosine - 11 / (3 * Math.sqrt(14))) < 1e-15)
    assert.equal(m.mismatches, 1)
    assert.ok(Math.abs(m.mismatch_fraction - 1 / 3) < 1e-15)
    assert.equal(compareValues(f32(1, 0), f32(0, 1), TOL).cosine, 0)
    assert.equal(compareValues(f32(1, 1), f32(-1, -1), TOL).cosine, -1)
    assert.equal(compareValues(f64(1, 2, 3), f64(2, 4, 6), TOL).cosine, 1)
  })
  test('zero vectors', () => {
    const both = compareValues(f32(0, 0), f32(0, -0), TOL)
    assert.equal(both.rel_l2, 0)
    assert.equal(both.cosine, 1)
    const refZero = compareValues(f64(1, 0), f64(0, 0), TOL)
    assert.equal(refZero.rel_l2, Infinity)
    assert.equal(refZero.cosine, 0)
  })
  test('float64 norms survive overflow and underflow of the squares', () => {
    const big = compareValues(f64(1e200, 1e200), f64(1e200, 2e200), TOL)
    assert.ok(Math.abs(big.rel_l2 - 1 / Math.sqrt(5)) < 1e-12, String(big.rel_l2))
    assert.ok(Math.abs(big.cosine - 3 / Math.sqrt(10)) < 1e-12)
    const tiny = compareValues(f64(1e-200), f64(2e-200), TOL)
    assert.ok(Math.abs(tiny.rel_l2 - 0.5) < 1e-12, String(tiny.rel_l2))
    assert.ok(Math.abs(tiny.cosine - 1) < 1e-12)
  })
  test('empty tensor compares equal', () => {
    const m = compareValues(f32(), f32(), TOL)
    assert.equal(m.count, 0)
    assert.equal(m.within_tolerance, true)
    assert.equal(m.cosine, 1)
  })
})

describe('p99 ULP', () => {
  test('nearest-rank 99th percentile over all positions', () => {
    const n = 1000
    const a = new Float32Array(n).fill(1)
    const b = new Float32Array(n).fill(1)
    for (let i = 0; i < 10; i++) a[i] = 1 + 3 * 2 ** -23 // 3 ULP
    for (let i = 10; i < 20; i++) a[i] = 1 + 2 ** -23 // 1 ULP
    const m = compareValues({dtype: 'float32', shape: [n], data: a}, {dtype: 'float32', shape: [n], data: b}, {rtol: 0, atol: 0})
    assert.equal(m.max_ulp, 3)
    assert.equal(m.p99_ulp, 1) // rank 990 ascending = 11th largest
    assert.equal(m.mismatches, 20)
    const few = new Float32Array(n).fill(1)
    for (let i = 0; i < 10; i++) few[i] = 1 + 3 * 2 ** -23
    assert.equal(compareValues({dtype: 'float32', shape: [n], data: few}, {dtype: 'float32', shape: [n], data: b}, TOL).p99_ulp, 0)
  })
  test('1M-element tensor', () => {
    const n = 1_000_000
    const a = new Float32Array(n)
    const b = new Float32Array(n)
    const bi = new Int32Array(b.buffer)
    for (let i = 0; i < n; i++) a[i] = Math.sin(i)
    b.set(a)
    for (let i = 0; i < n; i += 7) bi[i]! += i % 5 // 0..4 ULP on every 7th element
    const t0 = performance.now()
    const m = compareValues({dtype: 'float32', shape: [1000, 1000], data: a}, {dtype: 'float32', shape: [1000, 1000], data: b}, TOL)
    const ms = performance.now() - t0
    assert.equal(m.count, n)
    assert.equal(m.max_ulp, 4)
    assert.equal(m.p99_ulp, 4) // 1/35 of positions (> 1%) are 4 ULP apart
    assert.ok(m.rel_l2 > 0 && m.rel_l2 < 1e-6)
    assert.ok(ms < 2000, `took ${ms} ms`)
  })
})

describe('shapes and integers', () => {
  test('shape mismatch', () => {
    const m = compareValues({dtype: 'float32', shape: [1, 2], data: Float32Array.from([1, 2])}, f32(1, 2), TOL)
    assert.equal(m.shape_mismatch, true)
    assert.equal(m.within_tolerance, false)
    assert.equal(m.mismatches, 2)
    assert.equal(m.max_abs, Infinity)
    assert.equal(m.rel_l2, Infinity)
    assert.equal(compareValues(f32(1, 2), f32(1, 2, 3), TOL).mismatches, 3)
  })
  test('dtype mismatch is a shape mismatch', () => {
    const m = compareValues(f32(1), f64(1), TOL)
    assert.equal(m.shape_mismatch, true)
    assert.equal(m.within_tolerance, false)
  })
  test('int64 compares exactly, even beyond 2^53', () => {
    const m = compareValues(i64(1n, 5n, -3n), i64(1n, 2n, -3n), {rtol: 1, atol: 10})
    assert.equal(m.mismatches, 1)
    assert.equal(m.max_abs, 3)
    assert.equal(m.within_tolerance, false)
    const big = compareValues(i64(2n ** 60n + 1n), i64(2n ** 60n), TOL)
    assert.equal(big.mismatches, 1)
    assert.equal(big.max_abs, 1)
    assert.equal(compareValues(i64(-7n, 2n ** 62n), i64(-7n, 2n ** 62n), TOL).within_tolerance, true)
  })
  test('int32 and bool', () => {
    const m = compareValues(
      {dtype: 'int32', shape: [2], data: Int32Array.from([4, -1])},
      {dtype: 'int32', shape: [2], data: Int32Array.from([4, 1])},
      TOL,
    )
    assert.equal(m.mismatches, 1)
    assert.equal(m.max_abs, 2)
    const bools = compareValues(
      {dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0])},
      {dtype: 'bool', shape: [2], data: Uint8Array.from([1, 0])},
      TOL,
    )
    assert.equal(bools.within_tolerance, true)
  })
})
