// The GPU validation flow (scripts/gpu) on this CPU machine: `repro prepare --variants` stages
// named knob variants as repro.prepared/2 (each variant a --python target with its --set list),
// scripts/gpu/run_variants.py runs them through the folder's node_runner.py two at a time and
// packs the results, and scripts/gpu/table.mjs builds its table from the unpacked packs. The
// variants here are CPU-only and no GPU is simulated: the CUDA path itself (device=cuda variants,
// the CUDA fingerprint, device-run.sh) is only exercised on a GPU machine.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {PYTHON, ROOT, repro, tmpDir} from './helpers.js'

const RUN_VARIANTS = path.join(ROOT, 'scripts', 'gpu', 'run_variants.py')
const TABLE = path.join(ROOT, 'scripts', 'gpu', 'table.mjs')
const VARIANTS = [
  {name: 'default', set: ['device=cpu']},
  {name: 'threads-1', set: ['device=cpu', 'threads=1']},
]

function variantsFile(): string {
  const file = path.join(tmpDir(), 'variants.json')
  writeFileSync(file, JSON.stringify(VARIANTS))
  return file
}

const untar = (archive: string, into: string) => {
  mkdirSync(into, {recursive: true})
  const r = spawnSync('tar', ['xzf', archive, '-C', into], {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
}
const listTar = (archive: string) => spawnSync('tar', ['tzf', archive], {encoding: 'utf8'}).stdout.trim().split('\n').sort()

describe('GPU flow on the CPU: prepare --variants → run_variants.py → table.mjs', () => {
  test('two CPU variants: both ok with their names, the packs, and the table from them', () => {
    const prepared = tmpDir()
    const made = repro([
      'prepare',
      '--variants',
      variantsFile(),
      '--workload',
      'mlp',
      '--repeats',
      '1',
      '--epochs',
      '1',
      '--rows',
      '512',
      '--store-steps',
      '0',
      '--out',
      prepared,
    ])
    assert.equal(made.status, 0, made.stderr)
    const manifest = JSON.parse(readFileSync(path.join(prepared, 'manifest.json'), 'utf8'))
    assert.equal(manifest.schema, 'repro.prepared/2')
    // one plan: each variant is a python3 target with its settings as --set N:…
    assert.deepEqual(
      manifest.targets.map((t: {index: number; variant: string; reference: string; knobs: {device: string; threads: number | null}}) => [
        t.index,
        t.variant,
        t.reference,
        t.knobs.device,
        t.knobs.threads,
      ]),
      [
        [1, 'default', 'python3', 'cpu', null],
        [2, 'threads-1', 'python3', 'cpu', 1],
      ],
    )
    assert.deepEqual(
      manifest.runs.map((r: {dir: string; variant: string; target: number}) => [r.dir, r.variant, r.target]),
      [
        ['t1-r1', 'default', 1],
        ['t2-r1', 'threads-1', 2],
      ],
    )

    // the spec names python3 bare: run_variants.py resolves it on its own PATH (here: the test's python)
    const bin = tmpDir()
    symlinkSync(PYTHON, path.join(bin, 'python3'))
    const out = tmpDir()
    const ran = spawnSync(
      PYTHON,
      [RUN_VARIANTS, prepared, out, '--jobs', '2', '--deadline', '120', '--tensors', 'default+threads-1', '--fingerprint-device', 'cpu'],
      {encoding: 'utf8', timeout: 300_000, env: {...process.env, PATH: `${bin}:/usr/bin:/bin`}},
    )
    assert.equal(ran.status, 0, ran.stdout + ran.stderr)
    const results = JSON.parse(readFileSync(path.join(prepared, 'results.json'), 'utf8'))
    assert.equal(results.fingerprint_rc, 0, results.fingerprint_stderr)
    assert.deepEqual(
      results.runs.map((r: {dir: string; variant: string; workload: string; repeat: number; rc: number}) => [
        r.dir,
        r.variant,
        r.workload,
        r.repeat,
        r.rc,
      ]),
      [
        ['t1-r1', 'default', 'mlp', 1, 0],
        ['t2-r1', 'threads-1', 'mlp', 1, 0],
      ],
      JSON.stringify(results.runs.map((r: {stderr_tail: string}) => r.stderr_tail)),
    )

    assert.deepEqual(readdirSync(out).sort(), ['extra.tar.gz', 'runs-json.tar.gz', 'tensors-default-threads-1.tar.gz'])
    const jsons = listTar(path.join(out, 'runs-json.tar.gz'))
    for (const dir of ['t1-r1', 't2-r1'])
      for (const f of ['out/run.json', 'out/trace.json', 'status.json', 'spec.json'])
        assert.ok(jsons.includes(`${dir}/${f}`), `${dir}/${f}`)
    assert.ok(jsons.includes('manifest.json') && jsons.includes('results.json'))
    assert.deepEqual(listTar(path.join(out, 'tensors-default-threads-1.tar.gz')), [
      't1-r1/out/tensors.safetensors',
      't2-r1/out/tensors.safetensors',
    ])
    assert.ok(listTar(path.join(out, 'extra.tar.gz')).includes('fingerprint-cpu/fingerprint.json'))

    // what comes back from the GPU box: the packs unpacked into one folder, read by table.mjs
    const back = tmpDir()
    for (const pack of readdirSync(out)) untar(path.join(out, pack), back)
    const table = spawnSync(process.execPath, [TABLE, back, '--json', path.join(back, 'table.json')], {encoding: 'utf8'})
    assert.equal(table.status, 0, table.stderr)
    assert.match(table.stdout, /^\| mlp \| default \| — \| — \| \(reference\) \|/m)
    // the thread count does not change the mlp on the CPU here: bitwise the default
    assert.match(table.stdout, /^\| mlp \| threads-1 \| — \| — \| identical \|/m)
    const rows = JSON.parse(readFileSync(path.join(back, 'table.json'), 'utf8'))
    assert.deepEqual(
      rows.map((r: {variant: string; error?: string}) => [r.variant, r.error ?? null]),
      [
        ['default', null],
        ['threads-1', null],
      ],
    )
    // and the folder brought back is a prepared folder repro compare reads
    const compared = repro(['compare', back, '--json'])
    assert.equal(compared.status, 0, compared.stderr)
  })

  test('--variants with --python is one line, exit 2; run_variants.py refuses a repro.prepared/1 folder in one line', () => {
    const r = repro(['prepare', '--variants', variantsFile(), '--python', PYTHON, '--out', tmpDir()])
    assert.equal(r.status, 2)
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
    assert.match(r.stderr, /--variants stands for the targets; it does not go with --python or --image/)

    const old = tmpDir()
    writeFileSync(path.join(old, 'manifest.json'), JSON.stringify({schema: 'repro.prepared/1', runs: []}))
    const refused = spawnSync(PYTHON, [RUN_VARIANTS, old, tmpDir()], {encoding: 'utf8'})
    assert.equal(refused.status, 1)
    assert.equal(refused.stderr.trim().split('\n').length, 1, refused.stderr)
    assert.match(refused.stderr, /repro\.prepared\/1 is an older repro prepare's folder/)
  })
})
