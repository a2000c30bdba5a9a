// runAudit with --resume on recorded runs (fixtures/runs/python-threads): which cells the
// target is asked to run again when an earlier --out holds damaged or hostile run directories,
// and that none of them is trusted or crashes the audit.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {runAudit} from '../../../src/app/audit.js'
import type {AuditTargetSpec} from '../../../src/app/audit-types.js'
import {ensureOutDir} from '../../../src/app/out-dir.js'
import {silentProgress} from '../../../src/app/progress.js'
import {DEFAULT_SYNTHETIC, generateSynthetic} from '../../../src/core/data.js'
import type {AuditReport} from '../../../src/core/report.js'
import {isReproError} from '../../../src/errors.js'
import type {Target} from '../../../src/targets/target.js'
import {RecordedTarget} from '../../../src/targets/recorded.js'
import {ROOT} from '../report/sample.js'

const FIXTURE = path.join(ROOT, 'fixtures', 'runs', 'python-threads')

/** Audit the recorded pair into `outDir`; `ran` collects the run directories the targets were asked to run. */
async function audit(outDir: string, resume: boolean, ran: string[]): Promise<AuditReport> {
  const recordedReport = JSON.parse(readFileSync(path.join(FIXTURE, 'recorded-report.json'), 'utf8')) as AuditReport
  const specs: AuditTargetSpec[] = []
  for (const t of recordedReport.targets) {
    const recorded = await RecordedTarget.load(FIXTURE, t.name.replace(/^#\d+ /, '').replace(/ \[.*\]$/, ''))
    const counted: Target = {
      kind: recorded.kind,
      name: recorded.name,
      identify: () => recorded.identify(),
      cacheIdentity: () => recorded.cacheIdentity(),
      runProbeImpl: (job) => {
        ran.push(path.basename(job.outDir))
        return recorded.runProbeImpl(job)
      },
    }
    specs.push({target: counted, knobs: t.knobs_requested, role: t.role})
  }
  return runAudit({
    targets: specs,
    repeats: 2,
    seed: 1234,
    seeds: 1,
    explainBudget: 0,
    storeSteps: [],
    jobs: 1,
    cache: null,
    epochs: 1,
    workloads: ['mlp'],
    data: {mlp: generateSynthetic({...DEFAULT_SYNTHETIC, rows: 512})},
    timeoutMs: 60_000,
    outDir,
    ...(resume ? {resume: true} : {}),
    command: 'repro audit (test)',
    progress: silentProgress,
  })
}

describe('runAudit --resume on recorded runs', () => {
  test('a symlinked run.json, a bad complete.json and a missing trace run again; the intact cell is reused', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'repro-resume-'))
    const ran: string[] = []
    const first = await audit(out, false, ran)
    assert.deepEqual(ran, ['t1-r1', 't1-r2', 't2-r1', 't2-r2'])

    // a planted symlink: never read, and the rerun must not write through it
    const outside = path.join(mkdtempSync(path.join(os.tmpdir(), 'repro-outside-')), 'precious.txt')
    writeFileSync(outside, 'not yours\n')
    rmSync(path.join(out, 't1-r1', 'run.json'))
    symlinkSync(outside, path.join(out, 't1-r1', 'run.json'))
    writeFileSync(path.join(out, 't1-r2', 'complete.json'), '{"schema": "repro.complete/1", "tar')
    rmSync(path.join(out, 't2-r1', 'trace.json'))
    ran.length = 0
    const second = await audit(out, true, ran)
    assert.deepEqual(ran, ['t1-r1', 't1-r2', 't2-r1'], JSON.stringify(second.resume))
    assert.equal(second.resume?.resumed, 1)
    assert.equal(second.resume?.planned, 4)
    const reasons = Object.fromEntries(second.resume!.reran.map((r) => [r.dir, r.reason]))
    assert.match(reasons['t1-r1']!, /run\.json in .* is not a regular file/)
    assert.match(reasons['t1-r2']!, /complete\.json in .* is not valid JSON/)
    assert.match(reasons['t2-r1']!, /trace\.json is missing/)
    assert.equal(readFileSync(outside, 'utf8'), 'not yours\n')
    assert.ok(lstatSync(path.join(out, 't1-r1', 'run.json')).isFile(), 'the rerun wrote its own run.json')
    assert.equal(second.verdict.headline, first.verdict.headline)
    assert.deepEqual(
      second.targets.map((t) => t.trace_digest?.root),
      first.targets.map((t) => t.trace_digest?.root),
    )

    // everything complete again: nothing runs
    ran.length = 0
    const third = await audit(out, true, ran)
    assert.deepEqual(ran, [])
    assert.deepEqual([third.resume?.resumed, third.resume?.reran], [4, []])

    // a run that fails part-way leaves no completion record, so a resume runs it again
    rmSync(path.join(out, 't2-r2', 'complete.json'))
    ran.length = 0
    const fourth = await audit(out, true, ran)
    assert.deepEqual(ran, ['t2-r2'])
    assert.match(fourth.resume!.reran[0]!.reason, /no complete run there/)
    rmSync(out, {recursive: true, force: true})
  })

  test('a new audit into an earlier --out empties each run directory first: a planted symlink is never written through, a stale file goes', async () => {
    const out = mkdtempSync(path.join(os.tmpdir(), 'repro-rewrite-'))
    await audit(out, false, [])
    const outside = path.join(mkdtempSync(path.join(os.tmpdir(), 'repro-outside-')), 'precious.txt')
    writeFileSync(outside, 'not yours\n')
    rmSync(path.join(out, 't1-r1', 'run.json'))
    symlinkSync(outside, path.join(out, 't1-r1', 'run.json'))
    writeFileSync(path.join(out, 't2-r2', 'stale-from-an-earlier-audit.bin'), 'old')
    const ran: string[] = []
    await audit(out, false, ran)
    assert.deepEqual(ran, ['t1-r1', 't1-r2', 't2-r1', 't2-r2'])
    assert.equal(readFileSync(outside, 'utf8'), 'not yours\n')
    assert.ok(lstatSync(path.join(out, 't1-r1', 'run.json')).isFile(), 'the run wrote its own run.json')
    assert.throws(() => lstatSync(path.join(out, 't2-r2', 'stale-from-an-earlier-audit.bin')), /ENOENT/)
    rmSync(out, {recursive: true, force: true})
  })

  test('--resume needs an --out that exists; without --resume a missing one is created as before', async () => {
    const missing = path.join(mkdtempSync(path.join(os.tmpdir(), 'repro-resume-')), 'nothing')
    await assert.rejects(ensureOutDir(missing, {resume: true}), (e) => isReproError(e) && e.subject === '--resume')
    await ensureOutDir(missing)
    await ensureOutDir(missing, {resume: true})
  })
})
