// What an NVIDIA H200 measured (torch 2.11+cu130, cuDNN 9.19; fixtures/runs/gpu-h200, recorded
// by scripts/gpu/device-run.sh), checked here without a GPU through repro's own readers and
// compare: the CUDA fingerprint, which runs are bitwise reproducible run to run, and where
// TF32, AMP and torch.compile first change the numerics.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {compareRunDirs} from '../../../src/app/compare.js'
import {readRunDir} from '../../../src/artifacts/run-dir.js'
import {parseFingerprint} from '../../../src/artifacts/schemas.js'
import {ROOT} from '../report/sample.js'

const GPU = path.join(ROOT, 'fixtures', 'runs', 'gpu-h200')
const run = (r: string) => path.join(GPU, r)
const first = async (a: string, b: string) => {
  const report = await compareRunDirs([run(a), run(b)], 'test')
  assert.equal(
    report.targets.every((t) => t.status === 'ok'),
    true,
    JSON.stringify(report.targets.map((t) => t.error)),
  )
  return report.comparisons[0]!.divergence
}

describe('GPU fixtures (NVIDIA H200)', () => {
  test('the CUDA fingerprint: driver, runtime, cuDNN and cuBLAS as loaded, the card, live flags', () => {
    // biome-ignore lint/suspicious/noExplicitAny: a test walks the parsed (and validated) fingerprint by known paths
    const fp = parseFingerprint(JSON.parse(readFileSync(path.join(GPU, 'fingerprint-cuda.json'), 'utf8'))) as Record<string, any>
    assert.equal(fp['cuda'].driver, '580.159.04')
    assert.equal(fp['cuda'].runtime, '13.0')
    assert.equal(fp['cuda'].cudnn, '9.19.0')
    assert.deepEqual([fp['cuda'].devices[0].name, fp['cuda'].devices[0].capability], ['NVIDIA H200', '9.0'])
    const lib = (soname: string) => fp['libraries'].find((l: {soname: string}) => l.soname === soname)
    assert.equal(lib('libcublas.so.13').version, '13.1.0', 'asked from the loaded cuBLAS, not parsed from its file name')
    assert.equal(lib('libcudnn.so.9').version, '9.19.0')
    assert.ok(lib('libcudnn_engines_precompiled.so.9'), 'the warm-up step mapped cuDNN’s lazily loaded engines')
    assert.deepEqual([fp['flags'].cudnn_allow_tf32, fp['flags'].matmul_allow_tf32], [true, false])
    assert.equal(fp['attention'].flash_sdp_enabled, true)
    assert.equal(fp['torch'].config.cudnn_built_against_cuda, '13.1')
  })

  test('run to run: the cnn’s convolution weight gradient varies unless deterministic; the mlp does not', async () => {
    const cnn = await first('default/cnn-r1', 'default/cnn-r2')
    assert.equal(cnn.bitwise_identical, false)
    assert.deepEqual([cnn.first_divergence!.step, cnn.first_divergence!.entry], [0, 'grad/stem.conv.weight'])
    assert.equal((await first('deterministic/cnn-r1', 'deterministic/cnn-r2')).bitwise_identical, true)
    assert.equal((await first('default/mlp-r1', 'default/mlp-r2')).bitwise_identical, true)
  })

  test('torch.compile on CUDA is not reproducible run to run for the mlp (its embedding gradient)', async () => {
    const d = await first('compile/mlp-r1', 'compile/mlp-r2')
    assert.equal(d.first_divergence!.entry, 'grad/emb.0.weight')
  })

  test('TF32 and AMP change the first Linear at step 0; cuDNN’s TF32 switch moves the LSTM', async () => {
    for (const v of ['tf32-on', 'fp16', 'bf16']) {
      const d = await first('default/mlp-r1', `${v}/mlp-r1`)
      assert.deepEqual([d.first_divergence!.step, d.first_divergence!.entry], [0, 'fwd/mlp.0'], v)
      assert.ok(d.worst.length > 0, `${v}: measured on the stored step`)
    }
    const lstm = await first('default/lstm-r1', 'tf32-off/lstm-r1')
    assert.equal(lstm.first_divergence!.entry, 'fwd/lstm.0')
  })

  test('deterministic=warn collects the attention backward’s alert on CUDA', async () => {
    // one run read through compare's validators (compare itself needs two runs)
    const read = await readRunDir(run('det-warn/attention-r1'), 'test')
    const runJson = JSON.parse(readFileSync(run('det-warn/attention-r1/run.json'), 'utf8'))
    assert.equal(read.outcome.status, 'ok')
    assert.match(runJson.nondeterministic_alerts[0].message, /Memory Efficient attention defaults to a non-deterministic algorithm/)
  })
})
