// The spine end to end on the local-python target with the real probe and Debian's torch.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {hangingPython, processesMatching, PYTHON, pythonWithoutTorch, repro, SHARED_CACHE, tmpDir, unwrap} from './helpers.js'
import {needs} from './prereqs.js'

const FAST = ['--epochs', '1', '--rows', '512']

describe('repro audit (local python, real torch)', {skip: needs('torch')}, () => {
  test('the same python twice with repeats: bitwise reproducible, exit 0', () => {
    const out = tmpDir()
    const r = repro(['audit', '--python', PYTHON, '--python', PYTHON, '--repeats', '2', '--out', out, '--json', ...FAST], {
      cacheDir: SHARED_CACHE,
    })
    assert.equal(r.status, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.equal(report.verdict.status, 'reproducible')
    assert.equal(report.comparisons.length, 3) // two repeat pairs and one cross pair
    for (const c of report.comparisons) assert.equal(c.divergence.bitwise_identical, true)
    assert.ok(existsSync(path.join(out, 'report.json')))
    assert.ok(report.git && report.host, 'host fingerprint and git state are stamped into the record')
  })

  test('--no-cache: the runs start while the host is measured, and each target.json still records the host and git state', () => {
    const out = tmpDir()
    const r = repro(['audit', '--python', PYTHON, '--repeats', '2', '--no-cache', '--no-explain', '--out', out, '--json', ...FAST])
    assert.equal(r.status, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.ok(report.host?.cpu?.brand, 'the host fingerprint is in the report')
    const dirs = report.targets[0].runs.map((run: {dir: string}) => path.resolve(out, run.dir))
    assert.equal(dirs.length, 2)
    for (const dir of dirs) {
      const target = JSON.parse(readFileSync(path.join(dir, 'target.json'), 'utf8'))
      assert.deepEqual(target.host, report.host, `${dir}/target.json`)
      assert.deepEqual(target.git, report.git, `${dir}/target.json`)
      assert.equal(target.schema, 'repro.target/1')
    }
  })

  test('a thread-count override on one side: exit 1, first divergence named, threads in the fingerprint diff', () => {
    const r = repro(
      ['audit', '--python', PYTHON, '--python', PYTHON, '--repeats', '1', '--set', '2:threads=2', '--out', tmpDir(), '--json', ...FAST],
      {cacheDir: SHARED_CACHE},
    )
    assert.equal(r.status, 1, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.equal(report.verdict.status, 'drift')
    const cross = report.comparisons.find((c: {role: string}) => c.role === 'cross')
    assert.ok(cross.divergence.first_divergence, 'first divergence located')
    assert.equal(cross.divergence.first_divergence.step, 0)
    assert.match(report.verdict.headline, /first diverge at step 0, /)
    const threads = cross.fingerprint_changes.find((row: {path: string}) => row.path === 'threads.intra_op')
    assert.deepEqual([threads.a, threads.b], [1, 2])
  })

  test('terminal output names the verdict, the first divergence and the thread change', () => {
    const r = repro(
      ['audit', '--python', PYTHON, '--python', PYTHON, '--repeats', '1', '--set', '2:threads=2', '--out', tmpDir(), ...FAST],
      {cacheDir: SHARED_CACHE},
    )
    assert.equal(r.status, 1)
    assert.match(r.stdout, /^✘ drift between targets/)
    assert.match(r.stdout, /threads\.intra_op/)
    assert.equal(r.stderr, '', 'no progress noise when stderr is not a TTY')
  })

  test('bad targets: missing python and python without torch are one-line errors, exit 2, the good target still reported', () => {
    const r = repro([
      'audit',
      '--python',
      '/nonexistent/python3',
      '--python',
      pythonWithoutTorch(),
      '--python',
      PYTHON,
      '--repeats',
      '1',
      '--out',
      tmpDir(),
      '--json',
      ...FAST,
    ])
    assert.equal(r.status, 2, r.stderr)
    const report = JSON.parse(r.stdout)
    const [missing, noTorch, good] = report.targets
    assert.equal(missing.status, 'error')
    assert.match(missing.error.line, /^#1 python:\/nonexistent\/python3: .*does not exist — pass the path/)
    assert.equal(noTorch.status, 'error')
    assert.match(noTorch.error.line, /has no PyTorch .* apt-get install python3-torch/)
    assert.equal(good.status, 'ok')
    assert.equal(good.runs.length, 1)
    for (const t of [missing, noTorch]) assert.ok(!t.error.line.includes('\n'))
  })

  test('a probe that runs past --timeout is killed: exit 2 with the fix named, nothing left running', () => {
    // The interpreter never returns, so the outcome cannot depend on how fast this machine is.
    const marker = `repro-timeout-test-${process.pid}`
    const hang = hangingPython(marker)
    const t0 = Date.now()
    const r = repro(['audit', '--python', hang, '--repeats', '1', '--timeout', '1', '--no-cache', '--out', tmpDir()])
    assert.equal(r.status, 2, r.stdout + r.stderr)
    assert.match(unwrap(r.stdout), /timed out after 1 s and was killed — raise --timeout/)
    assert.ok(Date.now() - t0 < 120_000, 'killed at the timeout, not after the hour the interpreter sleeps')
    assert.deepEqual(processesMatching(marker), [], 'the probe process tree was killed')
  })

  test('bad flags are usage errors with exit 2 and one line', () => {
    const r = repro(['audit', '--python', PYTHON, '--set', '2:threads=2'])
    assert.equal(r.status, 2)
    assert.match(r.stderr, /^repro: --set: --set 2:threads=2 names target 2, but there are 1 — /)
    assert.equal(r.stderr.trim().split('\n').length, 1)
    const unknown = repro(['audit', '--bogus'])
    assert.equal(unknown.status, 2)
    assert.equal(unknown.stderr.trim().split('\n').length, 1)
    // flags that need or exclude another: the reason, not oclif's bare heading
    const needs = repro(['audit', '--data', 'x.csv', '--out', tmpDir()])
    assert.equal(needs.status, 2)
    assert.equal(needs.stderr, 'repro: All of the following must be provided when using --data: --label — see `repro audit --help`\n')
    const both = repro(['audit', '--script', 'a.py', '--module', 'b', '--out', tmpDir()])
    assert.equal(both.status, 2)
    assert.match(both.stderr, /^repro: --module=b cannot also be provided when using --script; .* — see `repro audit --help`\n$/)
    // prepare: --variants-python means nothing without --variants (it was ignored)
    const alone = repro(['prepare', '--variants-python', PYTHON, '--python', PYTHON, '--out', tmpDir()])
    assert.equal(alone.status, 2)
    assert.match(
      alone.stderr,
      /^repro: prepare: --variants-python names the interpreter of --variants targets; without --variants it would be ignored — add --variants FILE/,
    )
  })

  test('--set env.PYTHONPATH=DIR reaches the probe before its own entry (it used to replace it: the probe could not import)', () => {
    const lib = tmpDir('repro-lib-')
    // a library directory of the user's: python imports its sitecustomize at start
    writeFileSync(path.join(lib, 'sitecustomize.py'), `open(${JSON.stringify(path.join(lib, 'seen'))}, 'w').write('1')\n`)
    const r = repro(['run', '--python', PYTHON, '--set', `env.PYTHONPATH=${lib}`, '--out', tmpDir(), ...FAST])
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.ok(existsSync(path.join(lib, 'seen')), 'the knob’s PYTHONPATH was not in effect')
  })

  test('the report on disk is the one printed with --json', () => {
    const out = tmpDir()
    const r = repro(['audit', '--python', PYTHON, '--repeats', '1', '--out', out, '--json', ...FAST], {cacheDir: SHARED_CACHE})
    assert.equal(r.status, 0, r.stderr)
    assert.deepEqual(JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')).verdict, JSON.parse(r.stdout).verdict)
  })

  test('--out naming an existing file is a usage error (exit 2), not an internal error', () => {
    const file = path.join(tmpDir(), 'not-a-dir')
    writeFileSync(file, 'x')
    for (const cmd of ['audit', 'run']) {
      const r = repro([cmd, '--python', PYTHON, '--out', file, ...FAST])
      assert.equal(r.status, 2, `${cmd}: ${r.stderr}`)
      assert.match(r.stderr, /^repro: --out: .*not-a-dir exists and is not a directory — pass --out a directory/)
    }
  })

  test('audit writes every report format next to report.json', () => {
    const out = tmpDir()
    const r = repro(['audit', '--python', PYTHON, '--repeats', '1', '--out', out, ...FAST], {cacheDir: SHARED_CACHE})
    assert.equal(r.status, 0, r.stderr)
    for (const f of ['report.json', 'report.md', 'report.html', 'report.junit.xml']) assert.ok(existsSync(path.join(out, f)), f)
    // one target, one run: the verdict claims nothing it did not compare
    assert.match(readFileSync(path.join(out, 'report.md'), 'utf8').split('\n')[0]!, /^## ✔ repro: ran, nothing compared/)
  })

  test('--jobs 2 runs targets concurrently and reaches the same verdict and traces as one at a time', () => {
    const args = [
      'audit',
      '--python',
      PYTHON,
      '--python',
      PYTHON,
      '--set',
      '2:threads=2',
      '--repeats',
      '1',
      '--no-explain',
      '--json',
      ...FAST,
    ]
    const serial = JSON.parse(repro([...args, '--out', tmpDir()]).stdout)
    const parallel = JSON.parse(repro([...args, '--jobs', '2', '--out', tmpDir()]).stdout)
    assert.equal(parallel.verdict.headline, serial.verdict.headline)
    assert.deepEqual(
      parallel.targets.map((t: {trace_digest: {root: string}}) => t.trace_digest.root),
      serial.targets.map((t: {trace_digest: {root: string}}) => t.trace_digest.root),
    )
    assert.deepEqual(
      parallel.targets.map((t: {index: number}) => t.index),
      [1, 2],
    )
  })

  test('the Quickstart demo (no target): the host python with torch against itself and a thread variant, exit 0, variant explained', () => {
    const r = repro(['audit', '--json', '--out', tmpDir(), ...FAST], {cacheDir: SHARED_CACHE})
    assert.equal(r.status, 0, r.stderr)
    const report = JSON.parse(r.stdout)
    assert.deepEqual(
      report.targets.map((t: {role: string}) => t.role),
      ['target', 'variant'],
    )
    assert.match(report.targets[0].identity.details.real_path, /python3/)
    const variant = report.comparisons.find((c: {role: string}) => c.role === 'variant')
    assert.equal(variant.divergence.bitwise_identical, false, 'a different thread count changes the trace here')
    assert.match(report.verdict.headline, /^bitwise reproducible: .*the knob variant .* diverges at step 0, .*top suspect: threads/)
  })
})
