// `repro run` → `repro compare`, `repro fingerprint`, and the artifact readers against files
// the real probe wrote.

import {describe, test, before} from 'node:test'
import assert from 'node:assert/strict'
import {createHash} from 'node:crypto'
import {cpSync, readFileSync, truncateSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {parseSafetensors} from '../../src/artifacts/safetensors.js'
import {readRunDir} from '../../src/artifacts/run-dir.js'
import {storedKey} from '../../src/core/types.js'
import {PYTHON, repro, tmpDir, unwrap} from './helpers.js'
import {needs} from './prereqs.js'

const FAST = ['--epochs', '1', '--rows', '512']

describe('run, compare and the artifacts of the real probe', {skip: needs('torch')}, () => {
  let a = ''
  let b = ''
  let t = ''
  before(() => {
    const root = tmpDir()
    a = path.join(root, 'a')
    b = path.join(root, 'b')
    t = path.join(root, 't2')
    for (const [dir, extra] of [
      [a, []],
      [b, []],
      [t, ['--set', 'threads=2']],
    ] as const) {
      const r = repro(['run', '--python', PYTHON, '--out', dir, ...FAST, ...extra])
      assert.equal(r.status, 0, r.stderr)
    }
  })

  test('two runs compare bitwise identical (exit 0); a thread change drifts (exit 1)', () => {
    assert.equal(repro(['compare', a, b]).status, 0)
    const r = repro(['compare', a, t, '--json'])
    assert.equal(r.status, 1)
    assert.ok(JSON.parse(r.stdout).comparisons[0].divergence.first_divergence)
  })

  test('the safetensors reader reads what the probe wrote; stored bytes hash to the trace digests', async () => {
    const run = await readRunDir(a, 'a')
    const file = parseSafetensors(readFileSync(path.join(a, 'tensors.safetensors')))
    assert.ok(file.tensors.size > 0)
    let checked = 0
    for (const step of run.trace.steps.filter((s) => s.stored)) {
      for (const e of step.entries) {
        const key = storedKey(step.step, e.name)
        const info = file.tensors.get(key)
        assert.ok(info, `stored ${key}`)
        assert.deepEqual(info.shape, e.shape, key)
        if (e.dtype === 'float32' || e.dtype === 'float64' || e.dtype === 'int64') {
          // Not widened: the stored bytes are exactly the bytes the probe hashed.
          const raw = readFileSync(path.join(a, 'tensors.safetensors'))
          const start = 8 + Number(raw.readBigUInt64LE(0)) + info.begin
          assert.equal(
            createHash('sha256')
              .update(raw.subarray(start, start + (info.end - info.begin)))
              .digest('hex'),
            e.sha256,
            key,
          )
          checked++
        }
      }
    }
    assert.ok(checked > 50, `checked ${checked} digests`)
    const loss = run.values.get(storedKey(0, 'loss'))
    assert.equal(loss?.dtype, 'float64')
    assert.deepEqual(loss?.shape, [])
  })

  test('compare: a truncated tensors file is a one-line error (exit 2) and the other runs are still compared', () => {
    const broken = path.join(tmpDir(), 'broken')
    cpSync(a, broken, {recursive: true})
    truncateSync(path.join(broken, 'tensors.safetensors'), 4000)
    const r = repro(['compare', a, broken, b, '--json'])
    assert.equal(r.status, 2)
    const report = JSON.parse(r.stdout)
    assert.match(report.targets[1].error.line, /tensors\.safetensors .* is corrupt: .*truncated\?\) — rerun/)
    assert.equal(report.comparisons.length, 1)
    assert.equal(report.comparisons[0].divergence.bitwise_identical, true)
  })

  test('compare: hostile run.json and trace.json are rejected at the edge', () => {
    const hostile = path.join(tmpDir(), 'hostile')
    cpSync(a, hostile, {recursive: true})
    const trace = JSON.parse(readFileSync(path.join(hostile, 'trace.json'), 'utf8'))
    trace.steps[0].entries[0].name = 'fwd/\u001b[2Jevil'
    writeFileSync(path.join(hostile, 'trace.json'), JSON.stringify(trace))
    const r = repro(['compare', a, hostile])
    assert.equal(r.status, 2)
    assert.match(unwrap(r.stdout), /trace\.json .* is invalid: steps\.0\.entries\.0\.name/)
    assert.ok(!r.stdout.includes('\u001b[2J'), 'no terminal escape reaches the output')
  })

  test('compare needs two directories', () => {
    const r = repro(['compare', a])
    assert.equal(r.status, 2)
    assert.match(r.stderr, /at least two run directories/)
  })

  test('fingerprint --json: torch version, oneDNN, the BLAS actually loaded, threads and flags', () => {
    const r = repro(['fingerprint', '--python', PYTHON, '--json'])
    assert.equal(r.status, 0, r.stderr)
    const {fingerprint} = JSON.parse(r.stdout)
    assert.match(fingerprint.torch.version, /^\d+\.\d+/)
    assert.match(fingerprint.torch.config.onednn, /^v\d+\.\d+/)
    const blas = fingerprint.libraries.filter((l: {role: string}) => l.role === 'blas')
    assert.ok(blas.length > 0, 'a BLAS library is resolved from /proc/self/maps')
    assert.ok(blas.every((l: {real_path: string}) => l.real_path.startsWith('/')))
    assert.equal(typeof fingerprint.threads.intra_op, 'number')
    assert.equal(typeof fingerprint.flags.deterministic_algorithms, 'boolean')
  })

  test('a user CSV (numeric and categorical columns) trains in the real probe, twice bitwise identically', () => {
    const dir = tmpDir()
    const csv = path.join(dir, 'toy.csv')
    const rows = ['age,income,city,label']
    for (let i = 0; i < 200; i++)
      rows.push(`${20 + (i % 50)},${(i * 37) % 1000}.5,${['paris', 'lyon', 'nice'][i % 3]},${i % 7 < 3 ? 'yes' : 'no'}`)
    writeFileSync(csv, `${rows.join('\n')}\n`)
    const outs = [path.join(dir, 'r1'), path.join(dir, 'r2')]
    for (const out of outs) {
      const r = repro(['run', '--python', PYTHON, '--data', csv, '--label', 'label', '--epochs', '1', '--out', out, '--json'])
      assert.equal(r.status, 0, r.stderr)
    }
    const data = JSON.parse(readFileSync(path.join(outs[0]!, 'run.json'), 'utf8')).data
    assert.deepEqual([data.rows, data.numeric, data.categorical, data.classes], [200, 2, 1, 2])
    assert.equal(repro(['compare', ...outs]).status, 0)
    const noLabel = repro(['run', '--python', PYTHON, '--data', csv, '--label', 'nope', '--out', path.join(dir, 'x')])
    assert.equal(noLabel.status, 2)
    assert.match(noLabel.stderr, /no column named "nope"/)
  })
})
