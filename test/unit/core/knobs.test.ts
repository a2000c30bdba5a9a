import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {DEFAULT_KNOBS, KnobError, knobsForTarget, parseKnobOverride} from '../../../src/core/knobs.js'

describe('knob overrides', () => {
  const base = {...DEFAULT_KNOBS, env: {}}
  test('applies N:key=value to that target only', () => {
    const o = parseKnobOverride('2:threads=2')
    assert.equal(knobsForTarget(base, [o], 1).threads, null)
    assert.equal(knobsForTarget(base, [o], 2).threads, 2)
  })
  test('without N applies to every target; later overrides win', () => {
    const os = [parseKnobOverride('deterministic=true'), parseKnobOverride('1:deterministic=off')]
    assert.equal(knobsForTarget(base, os, 1).deterministic, false)
    assert.equal(knobsForTarget(base, os, 3).deterministic, true)
  })
  test('env knobs merge and do not mutate the base', () => {
    const k = knobsForTarget(base, [parseKnobOverride('env.OMP_NUM_THREADS=1'), parseKnobOverride('env.MKL_NUM_THREADS=1')], 1)
    assert.deepEqual(k.env, {OMP_NUM_THREADS: '1', MKL_NUM_THREADS: '1'})
    assert.deepEqual(base.env, {})
  })
  for (const bad of [
    'threads=0',
    'threads=abc',
    'nope=1',
    'amp=fp8',
    'device=tpu',
    'env.lower=1',
    'deterministic=maybe',
    'threads',
    '0:threads=1',
  ]) {
    test(`rejects ${bad}`, () => assert.throws(() => parseKnobOverride(bad), KnobError))
  }
})
