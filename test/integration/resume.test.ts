// `repro audit --resume` on the local-python target with the real probe: an earlier audit's
// complete runs are taken as they are (their files untouched), a missing or damaged one runs
// again, and the verdict and traces are the first audit's.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {PYTHON, repro, tmpDir} from './helpers.js'
import {needs} from './prereqs.js'

const FAST = ['--epochs', '1', '--rows', '512']
const audit = (repeats = 2) => [
  'audit',
  '--python',
  PYTHON,
  '--python',
  PYTHON,
  '--repeats',
  String(repeats),
  '--no-explain',
  '--no-cache',
  ...FAST,
]
const AUDIT = audit()

interface Report {
  verdict: {exit_code: number; headline: string}
  targets: {trace_digest?: {root: string}; runs: {dir: string; resumed?: boolean}[]}[]
  resume?: {planned: number; resumed: number; reran: {dir: string; reason: string}[]; reruns?: {resumed: number; ran: number}}
  attribution?: {experiments: {id: string; kind: string; outcome: string; knobs: {name: string}[]; first_divergence_after: unknown}[]}
}

/** Every file of a run directory with its inode and modification time: what "untouched" means. */
function identity(dir: string): string[] {
  return readdirSync(dir, {recursive: true})
    .map(String)
    .sort()
    .map((f) => {
      const s = statSync(path.join(dir, f))
      return `${f} ${s.ino} ${s.mtimeMs}`
    })
}

describe('repro audit --resume (local python, real torch)', {skip: needs('torch')}, () => {
  test('a deleted and a truncated run run again; the others are taken untouched; same verdict and traces', () => {
    const out = tmpDir()
    const first = repro([...AUDIT, '--out', out, '--json'])
    assert.equal(first.status, 0, first.stderr)
    const a: Report = JSON.parse(first.stdout)
    assert.equal(a.resume, undefined, 'a plain audit has no resume summary')
    const dirs = a.targets.flatMap((t) => t.runs.map((r) => path.basename(r.dir)))
    assert.deepEqual(dirs, ['t1-r1', 't1-r2', 't2-r1', 't2-r2'])
    const before = Object.fromEntries(dirs.map((d) => [d, identity(path.join(out, d))]))

    rmSync(path.join(out, 't1-r2'), {recursive: true})
    writeFileSync(path.join(out, 't2-r1', 'run.json'), '{"schema": "repro.run/1", "sta')
    const second = repro([...AUDIT, '--out', out, '--resume', '--json'])
    assert.equal(second.status, 0, second.stderr)
    const b: Report = JSON.parse(second.stdout)
    assert.equal(b.resume?.planned, 4)
    assert.equal(b.resume?.resumed, 2)
    assert.deepEqual(
      b.resume?.reran.map((r) => r.dir),
      ['t1-r2', 't2-r1'],
    )
    assert.match(b.resume!.reran[0]!.reason, /run directory is missing/)
    assert.match(b.resume!.reran[1]!.reason, /run\.json .* not valid JSON/)
    assert.deepEqual(
      b.targets.flatMap((t) => t.runs.map((r) => Boolean(r.resumed))),
      [true, false, false, true],
    )
    // the kept runs' files are the same files, never rewritten
    assert.deepEqual(identity(path.join(out, 't1-r1')), before['t1-r1'])
    assert.deepEqual(identity(path.join(out, 't2-r2')), before['t2-r2'])
    assert.notDeepEqual(identity(path.join(out, 't2-r1')), before['t2-r1'])
    assert.equal(b.verdict.exit_code, a.verdict.exit_code)
    assert.equal(b.verdict.headline, a.verdict.headline)
    assert.deepEqual(
      b.targets.map((t) => t.trace_digest?.root),
      a.targets.map((t) => t.trace_digest?.root),
    )

    // all complete now: nothing runs, and the terminal report says so
    const third = repro([...AUDIT, '--out', out, '--resume'])
    assert.equal(third.status, 0, third.stderr)
    assert.match(third.stdout, new RegExp(`Resumed 4 of 4 runs from --out ${out}; none ran again`))
    for (const d of dirs.filter((d) => d !== 't1-r2' && d !== 't2-r1')) assert.deepEqual(identity(path.join(out, d)), before[d])

    // another seed is another input: every run runs again, and says why
    const fourth = repro([...audit(1), '--out', out, '--resume', '--seed', '7', '--json'])
    assert.equal(fourth.status, 0, fourth.stderr)
    const d: Report = JSON.parse(fourth.stdout)
    assert.deepEqual(
      d.resume?.reran.map((r) => `${r.dir}: ${r.reason}`),
      ['t1-r1: it ran seed 1234, this audit seed 7', 't2-r1: it ran seed 1234, this audit seed 7'],
    )
  })

  test('explaining’s reruns are resumed too: the same experiments, their directories untouched; a damaged one reruns', () => {
    const out = tmpDir()
    // bf16 autocast in #2 drifts on any CPU: the counterfactual reruns #2 with amp aligned
    const args = ['audit', '--python', PYTHON, '--python', PYTHON, '--set', '2:amp=bf16', '--repeats', '1', '--no-cache', ...FAST]
    const first = repro([...args, '--out', out, '--json'])
    assert.equal(first.status, 1, first.stderr)
    const a: Report = JSON.parse(first.stdout)
    // the explain stage's reruns: every run directory outside the matrix (t1-r1, …) with a completion record
    const reruns = readdirSync(out).filter((d) => !/^t\d+-/.test(d) && existsSync(path.join(out, d, 'complete.json')))
    assert.ok(
      reruns.some((d) => /^e\d+-t2$/.test(d)),
      `no counterfactual rerun in ${readdirSync(out).join(', ')}`,
    )
    const before = Object.fromEntries(reruns.map((d) => [d, identity(path.join(out, d))]))
    const experiments = (r: Report) =>
      r.attribution?.experiments.map((e) => [e.id, e.kind, e.outcome, e.knobs.map((k) => k.name), e.first_divergence_after])

    const second = repro([...args, '--out', out, '--resume', '--json'])
    assert.equal(second.status, 1, second.stderr)
    const b: Report = JSON.parse(second.stdout)
    assert.deepEqual(b.resume?.reruns, {resumed: reruns.length, ran: 0})
    assert.deepEqual(experiments(b), experiments(a))
    for (const d of reruns) assert.deepEqual(identity(path.join(out, d)), before[d], d)

    // a damaged rerun runs again; the terminal report counts both kinds
    writeFileSync(path.join(out, reruns[0]!, 'run.json'), '{"schema": "repro.run/1", "sta')
    const third = repro([...args, '--out', out, '--resume'])
    assert.equal(third.status, 1, third.stderr)
    assert.match(
      third.stdout.replace(/\s+/g, ' '),
      new RegExp(
        `Resumed 2 of 2 runs from --out ${out}; none ran again; explaining: ${reruns.length - 1} of ${reruns.length} reruns? resumed`,
      ),
    )
    assert.notDeepEqual(identity(path.join(out, reruns[0]!)), before[reruns[0]!])
  })

  test('--resume without --out, or with an --out that does not exist: one usage line, exit 2', () => {
    const none = repro([...AUDIT, '--resume'])
    assert.equal(none.status, 2)
    assert.match(none.stderr.trim(), /^repro: --resume: needs the --out DIR of the audit it resumes — add --out DIR/)
    assert.equal(none.stderr.trim().split('\n').length, 1)
    const missing = path.join(tmpDir(), 'never-written')
    const gone = repro([...AUDIT, '--out', missing, '--resume'])
    assert.equal(gone.status, 2)
    assert.match(gone.stderr.trim(), /^repro: --resume: --out .*never-written does not exist, so there is no earlier audit to resume — /)
    assert.equal(gone.stderr.trim().split('\n').length, 1)
  })
})
