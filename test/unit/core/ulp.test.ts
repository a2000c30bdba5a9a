// ULP distances: ordered-integer mapping for float32/float64, zero crossing and denormals.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {ulpDistance32, ulpDistance64, ulpDistance64Big} from '../../../src/core/ulp.js'

const MIN32 = 2 ** -149 // smallest positive float32 denormal
const MIN64 = 5e-324 // smallest positive float64 denormal

describe('ulpDistance32', () => {
  test('+0 and -0 are the same ordinal', () => {
    assert.equal(ulpDistance32(0, -0), 0)
  })
  test('denormals and zero crossing', () => {
    assert.equal(ulpDistance32(MIN32, 0), 1)
    assert.equal(ulpDistance32(-MIN32, 0), 1)
    assert.equal(ulpDistance32(-MIN32, MIN32), 2)
    assert.equal(ulpDistance32(MIN32, 2 * MIN32), 1)
  })
  test('1.0 vs nextafter(1.0)', () => {
    assert.equal(ulpDistance32(1, 1 + 2 ** -23), 1)
    assert.equal(ulpDistance32(1, 1 - 2 ** -24), 1)
    assert.equal(ulpDistance32(-1, 1), 2 * 0x3f800000)
  })
  test('NaN', () => {
    assert.equal(ulpDistance32(NaN, NaN), 0)
    assert.equal(ulpDistance32(NaN, 1), Infinity)
    assert.equal(ulpDistance32(0, NaN), Infinity)
  })
})

describe('ulpDistance64', () => {
  test('denormals, zero crossing and 1.0', () => {
    assert.equal(ulpDistance64(0, -0), 0)
    assert.equal(ulpDistance64(MIN64, 0), 1)
    assert.equal(ulpDistance64(-MIN64, MIN64), 2)
    assert.equal(ulpDistance64(1, 1 + Number.EPSILON), 1)
    assert.equal(ulpDistance64(1, 1 + 4 * Number.EPSILON), 4)
    assert.equal(ulpDistance64(2, 1), 2 ** 52)
  })
  test('NaN', () => {
    assert.equal(ulpDistance64(NaN, NaN), 0)
    assert.equal(ulpDistance64(1, NaN), Infinity)
  })
  test('agrees with the exact BigInt64 mapping', () => {
    let seed = 12345
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648
      return seed / 2147483648
    }
    const values = [0, -0, MIN64, -MIN64, 1, -1, 1e-310, -1e-310, 1e300, -1e300, Number.MAX_VALUE]
    for (let i = 0; i < 200; i++) values.push((rnd() - 0.5) * 10 ** Math.floor(rnd() * 20 - 10))
    for (const a of values) {
      for (const b of values.slice(0, 40)) {
        const exact = ulpDistance64Big(a, b)
        const fast = ulpDistance64(a, b)
        if (exact < 2n ** 53n) assert.equal(fast, Number(exact), `${a} vs ${b}`)
        else assert.ok(Math.abs(fast - Number(exact)) <= Number(exact) * 2 ** -52, `${a} vs ${b}`)
      }
    }
  })
})
