import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {DEFAULT_KNOBS, isEnvKnob, KnobError, knobsForTarget, parseKnobOverride} from '../../../src/core/knobs.js'
import {explainKnob, explainPath} from '../../../src/core/knowledge.js'
import {probeRoot} from '../../../src/targets/probe-path.js'

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

describe('environment defaults that change numerics are recorded (ENV_VARIABLES)', () => {
  test('oneDNN variables, under both names, are knobs that reruns align; the loader variables are recorded only', () => {
    for (const name of ['ONEDNN_MAX_CPU_ISA', 'ONEDNN_DEFAULT_FPMATH_MODE', 'DNNL_MAX_CPU_ISA', 'DNNL_DEFAULT_FPMATH_MODE'])
      assert.equal(isEnvKnob(name), true, name)
    for (const name of ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'ONEDNN_API_KEY', 'DNNL_SECRET']) assert.equal(isEnvKnob(name), false, name)
    assert.equal(parseKnobOverride('2:env.ONEDNN_MAX_CPU_ISA=AVX2').apply({...DEFAULT_KNOBS, env: {}}).env['ONEDNN_MAX_CPU_ISA'], 'AVX2')
  })
  test('each has a sourced explanation in the knowledge base', () => {
    for (const p of [
      'env.ONEDNN_MAX_CPU_ISA',
      'env.DNNL_MAX_CPU_ISA',
      'env.ONEDNN_DEFAULT_FPMATH_MODE',
      'env.LD_PRELOAD',
      'env.LD_LIBRARY_PATH',
    ]) {
      const k = explainPath(p)
      assert.ok(k, p)
      assert.match(k.source, /^https:\/\//)
    }
    assert.equal(explainKnob('env.ONEDNN_MAX_CPU_ISA')?.id, 'onednn-max-cpu-isa')
  })
  test("the probe's recording (its copy of the table) keeps them, names of files as given, and still drops secrets", () => {
    const script = [
      'import json, sys',
      'from repro_probe.fingerprint import redact_env',
      'print(json.dumps(redact_env(json.loads(sys.argv[1]))))',
    ].join('\n')
    const env = {
      ONEDNN_MAX_CPU_ISA: 'AVX2',
      DNNL_DEFAULT_FPMATH_MODE: 'BF16',
      LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
      LD_LIBRARY_PATH: '/usr/local/cuda/lib64:/opt/mkl/lib',
      ONEDNN_API_TOKEN: 'hunter2',
      HOME: '/root',
    }
    const r = spawnSync(process.env['REPRO_TEST_PYTHON'] ?? '/usr/bin/python3', ['-c', script, JSON.stringify(env)], {
      encoding: 'utf8',
      env: {PATH: '/usr/bin:/bin', PYTHONPATH: probeRoot()},
    })
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(JSON.parse(r.stdout), {
      DNNL_DEFAULT_FPMATH_MODE: 'BF16',
      LD_LIBRARY_PATH: '/usr/local/cuda/lib64:/opt/mkl/lib',
      LD_PRELOAD: '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2',
      ONEDNN_MAX_CPU_ISA: 'AVX2',
    })
  })
})
