// diffFingerprints: flattening, grouping, library keys, ordering and the key-change summary.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {diffFingerprints, keyChanges} from '../../../src/core/fingerprint-diff.js'
import type {Fingerprint} from '../../../src/core/types.js'

function fp(): Fingerprint {
  return {
    schema: 'repro.fingerprint/1',
    probe_version: '0.1.0',
    python: {version: '3.11.2', implementation: 'CPython'},
    os: {system: 'Linux', machine: 'x86_64', glibc: '2.36'},
    torch: {
      version: '1.13.0a0',
      cuda_build: null,
      config: {
        compiler: 'GCC 12.2',
        cpu_capability: 'AVX2',
        onednn: 'v2.6.3',
        mkl: null,
        blas_info: 'generic',
        build_settings: {USE_CUDA: 'OFF'},
      },
    },
    numpy: {version: '1.24.2'},
    cuda: {available: false, runtime: null, devices: [{index: 0, name: 'NVIDIA H100', capability: '9.0'}]},
    libraries: [
      {
        soname: 'libblas.so.3',
        path: '/usr/lib/x86_64-linux-gnu/libblas.so.3',
        real_path: '/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3',
        role: 'blas',
        version: '0.3.21',
      },
      {soname: 'libcudnn.so.9', path: '/x/libcudnn.so.9', real_path: '/x/libcudnn.so.9.1.0', role: 'cudnn', version: '9.1.0'},
    ],
    flags: {cudnn_benchmark: false, mkldnn_enabled: true},
    threads: {intra_op: 1, inter_op: 1, cpu_count: 2, affinity: 2},
    env: {OMP_NUM_THREADS: '2'},
    distributions: [
      {name: 'torch', version: '1.13.1'},
      {name: 'zope.interface', version: '6.0'},
    ],
  }
}

describe('diffFingerprints', () => {
  test('a fingerprint against itself has no changes', () => {
    const d = diffFingerprints(fp(), fp())
    assert.equal(d.summary.changed, 0)
    assert.ok(d.rows.length > 20)
    assert.ok(d.rows.every((r) => r.change === 'same' && !r.changed && r.text === undefined))
    assert.ok(Object.values(d.summary.byGroup).every((n) => n === 0))
  })

  test('groups of well-known paths', () => {
    const rows = new Map(diffFingerprints(fp(), fp()).rows.map((r) => [r.path, r]))
    const group = (p: string): string | undefined => rows.get(p)?.group
    assert.equal(group('torch.version'), 'framework')
    assert.equal(group('numpy.version'), 'framework')
    assert.equal(group('probe_version'), 'framework')
    assert.equal(group('torch.config.onednn'), 'cpu_math')
    assert.equal(group('torch.config.cpu_capability'), 'cpu_math')
    assert.equal(group('torch.config.compiler'), 'build')
    assert.equal(group('torch.config.build_settings.USE_CUDA'), 'build')
    assert.equal(group('cuda.runtime'), 'gpu')
    assert.equal(group('cuda.devices[0].name'), 'hardware')
    assert.equal(group('threads.intra_op'), 'runtime')
    assert.equal(group('threads.cpu_count'), 'hardware')
    assert.equal(group('os.machine'), 'hardware')
    assert.equal(group('os.glibc'), 'system')
    assert.equal(group('python.version'), 'system')
    assert.equal(group('flags.cudnn_benchmark'), 'runtime')
    assert.equal(group('env.OMP_NUM_THREADS'), 'runtime')
    assert.equal(group('distributions.zope.interface'), 'packages')
    assert.equal(rows.get('torch.config.mkl')!.a, null)
  })

  test('libraries are keyed by role:soname', () => {
    const b = fp()
    const libs = b.libraries as {[k: string]: string}[]
    libs[0]!.real_path = '/opt/mkl/lib/libmkl_rt.so.2'
    libs[0]!.version = '2024.0'
    const d = diffFingerprints(fp(), b)
    const blas = d.rows.find((r) => r.path === 'libraries.blas:libblas.so.3')!
    assert.equal(blas.group, 'cpu_math')
    assert.equal(blas.change, 'changed')
    assert.equal(blas.a, '/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 (0.3.21)')
    assert.equal(blas.b, '/opt/mkl/lib/libmkl_rt.so.2 (2024.0)')
    const cudnn = d.rows.find((r) => r.path === 'libraries.cudnn:libcudnn.so.9')!
    assert.equal(cudnn.group, 'gpu')
    assert.equal(cudnn.change, 'same')
    assert.equal(d.summary.changed, 1)
  })

  test('torch 1.13 vs 2.6, another oneDNN and thread count', () => {
    const b = fp()
    const torch = b.torch as {version: string; config: {onednn: string}}
    torch.version = '2.6.0+cpu'
    torch.config.onednn = 'v3.5.3'
    ;(b.threads as {[k: string]: number}).intra_op = 4
    ;(b.distributions as unknown[]).push({name: 'sympy', version: '1.13'})
    delete (b.env as {[k: string]: string}).OMP_NUM_THREADS
    const d = diffFingerprints(fp(), b)
    const changed = d.rows.filter((r) => r.changed)
    assert.deepEqual(
      changed.map((r) => [r.group, r.path, r.change]),
      [
        ['framework', 'torch.version', 'changed'],
        ['cpu_math', 'torch.config.onednn', 'changed'],
        ['runtime', 'threads.intra_op', 'changed'],
        ['runtime', 'env.OMP_NUM_THREADS', 'removed'],
        ['packages', 'distributions.sympy', 'added'],
      ],
    )
    assert.equal(
      d.rows.slice(0, 5).every((r) => r.changed),
      true,
      'changed rows come first',
    )
    assert.equal(
      d.rows.slice(5).some((r) => r.changed),
      false,
    )
    assert.equal(d.summary.changed, 5)
    assert.deepEqual(d.summary.byGroup, {framework: 1, gpu: 0, cpu_math: 1, runtime: 2, hardware: 0, system: 0, build: 0, packages: 1})
    const tv = changed[0]!
    assert.ok(tv.text, 'a text diff of the version')
    const text = tv.text
    assert.ok(text.some((c) => c.removed) && text.some((c) => c.added))
    assert.equal(
      text
        .filter((c) => !c.added)
        .map((c) => c.value)
        .join(''),
      '1.13.0a0',
    )
    assert.equal(
      text
        .filter((c) => !c.removed)
        .map((c) => c.value)
        .join(''),
      '2.6.0+cpu',
    )
    const intra = changed[2]!
    assert.equal(intra.a, 1)
    assert.equal(intra.b, 4)
    assert.equal(intra.text, undefined, 'no text diff for numbers')
    assert.equal(changed[3]!.b, undefined)
    assert.deepEqual(
      keyChanges(d).map((r) => r.path),
      ['torch.version', 'torch.config.onednn', 'threads.intra_op', 'env.OMP_NUM_THREADS'],
    )
    assert.deepEqual(
      keyChanges(d, 2).map((r) => r.path),
      ['torch.version', 'torch.config.onednn'],
    )
  })

  test('unicode and hostile keys are just compared', () => {
    const a = fp()
    const b = fp()
    ;(a.env as {[k: string]: string}).TORCH_X = 'naïve 🚀 e\u0301'
    ;(b.env as {[k: string]: string}).TORCH_X = 'naïve 🛸 e\u0301'
    ;(b.env as {[k: string]: unknown}) = JSON.parse('{"__proto__": "x", "TORCH_X": "naïve 🛸 e\u0301"}')
    ;(a.env as {[k: string]: unknown}) = JSON.parse('{"__proto__": "x", "TORCH_X": "naïve 🚀 e\u0301"}')
    const d = diffFingerprints(a, b)
    const row = d.rows.find((r) => r.path === 'env.TORCH_X')!
    assert.equal(row.change, 'changed')
    assert.equal(
      row
        .text!.filter((c) => !c.removed)
        .map((c) => c.value)
        .join(''),
      'naïve 🛸 e\u0301',
    )
    assert.equal(d.rows.find((r) => r.path === 'env.__proto__')!.change, 'same')
    assert.equal(d.summary.changed, 1)
  })
})
