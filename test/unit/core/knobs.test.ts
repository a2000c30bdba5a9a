import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {DEFAULT_KNOBS, isEnvKnob, KnobError, knobSuffix, knobsForTarget, parseKnobOverride, unexercisedBy} from '../../../src/core/knobs.js'
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

describe('data-parallel knobs (world_size, ddp_backend, bucket_cap_mb, sync_batchnorm)', () => {
  const base = {...DEFAULT_KNOBS, env: {}}
  test('parse: world_size 1-16, bucket_cap_mb a number of MiB, ddp_backend gloo|nccl|default', () => {
    assert.equal(knobsForTarget(base, [parseKnobOverride('2:world_size=4')], 2).world_size, 4)
    assert.throws(() => parseKnobOverride('world_size=17'), KnobError)
    assert.throws(() => parseKnobOverride('world_size=0'), KnobError)
    assert.equal(knobsForTarget(base, [parseKnobOverride('bucket_cap_mb=0.001')], 1).bucket_cap_mb, 0.001)
    assert.equal(knobsForTarget(base, [parseKnobOverride('bucket_cap_mb=.5')], 1).bucket_cap_mb, 0.5)
    assert.throws(() => parseKnobOverride('bucket_cap_mb=1e3'), KnobError)
    assert.throws(() => parseKnobOverride('bucket_cap_mb=0'), KnobError)
    assert.equal(knobsForTarget(base, [parseKnobOverride('ddp_backend=default')], 1).ddp_backend, null)
    assert.throws(() => parseKnobOverride('ddp_backend=mpi'), KnobError)
  })
  test('a setting of DDP itself is unexercised unless both sides train data-parallel; world_size never is', () => {
    assert.match(unexercisedBy('bucket_cap_mb', 'mlp', 'cpu', 1) ?? '', /world_size 1/)
    assert.equal(unexercisedBy('bucket_cap_mb', 'mlp', 'cpu', 2), null)
    assert.equal(unexercisedBy('world_size', 'attention', 'cpu', 1), null)
    assert.match(unexercisedBy('sync_batchnorm', 'mlp', 'cpu', 2) ?? '', /CUDA only/)
    assert.match(unexercisedBy('sync_batchnorm', 'attention', 'cuda', 2) ?? '', /not exercised by attention/)
  })
  test('a run recorded before the knobs existed names no "world_size=undefined" (it ran with the defaults)', () => {
    const {world_size: _w, ddp_backend: _d, bucket_cap_mb: _b, sync_batchnorm: _s, ...old} = {...base, threads: 2}
    assert.equal(knobSuffix(old as typeof base), ' [threads=2]')
    assert.equal(knobSuffix({...base, world_size: 2}), ' [world_size=2]')
  })
  test('the explanation follows the workload: reduction order only for attention, per-rank state for the others', () => {
    assert.match(explainKnob('world_size', 'attention')?.text ?? '', /only reduction order/)
    assert.match(explainKnob('world_size', 'mlp')?.text ?? '', /per-rank BatchNorm .*per-rank dropout/)
    assert.match(explainKnob('world_size', 'cnn')?.text ?? '', /per-rank BatchNorm/)
    assert.match(explainKnob('world_size', 'lstm')?.text ?? '', /per-rank dropout/)
    assert.match(explainKnob('world_size', null)?.text ?? '', /reduction order/)
    assert.match(explainKnob('bucket_cap_mb', 'mlp')?.source ?? '', /^https:/)
  })
})
