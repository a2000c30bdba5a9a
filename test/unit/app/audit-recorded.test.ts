// runAudit end to end on recorded runs (fixtures/runs/<case>, scripts/record-runs.mjs): the
// stages, attribution and the terminal renderer without torch, python or an engine. The
// replayed audit must reach what the real audit reached (its recorded report.json), and the
// terminal summary must match the golden files at 80 and 120 columns
// (REPRO_UPDATE_GOLDEN=1 rewrites them).
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {runAudit} from '../../../src/app/audit.js'
import type {AuditTargetSpec} from '../../../src/app/audit-types.js'
import {RunCache} from '../../../src/app/cache.js'
import {silentProgress} from '../../../src/app/progress.js'
import {DEFAULT_SYNTHETIC, generateSynthetic} from '../../../src/core/data.js'
import type {AuditReport} from '../../../src/core/report.js'
import {renderTerminal} from '../../../src/report/terminal.js'
import {RecordedTarget} from '../../../src/targets/recorded.js'
import {ROOT} from '../report/sample.js'

interface Case {
  repeats: number
  seeds: number
  storeSteps: number[] | null
}
const CASES: Record<string, Case> = {
  'bookworm-trixie': {repeats: 2, seeds: 2, storeSteps: null},
  'python-threads': {repeats: 2, seeds: 1, storeSteps: []},
}

/** `pick`: the recorded targets to audit, by 0-based index, in this order (default: all, as recorded). */
async function replay(
  name: string,
  c: Case,
  cache: RunCache | null = null,
  pick: number[] | null = null,
  jobs = 1,
): Promise<{report: AuditReport; recorded: AuditReport}> {
  const dir = path.join(ROOT, 'fixtures', 'runs', name)
  const recorded = JSON.parse(readFileSync(path.join(dir, 'recorded-report.json'), 'utf8')) as AuditReport
  const targets: AuditTargetSpec[] = []
  for (const t of pick ? pick.map((i) => recorded.targets[i]!) : recorded.targets) {
    const bare = t.name.replace(/^#\d+ /, '').replace(/ \[.*\]$/, '')
    targets.push({target: await RecordedTarget.load(dir, bare), knobs: t.knobs_requested, role: t.role})
  }
  // a fixed output directory, so the golden text does not depend on a random temp name
  const outDir = `/tmp/repro-golden-${name}`
  rmSync(outDir, {recursive: true, force: true})
  const report = await runAudit({
    targets,
    repeats: c.repeats,
    seed: 1234,
    seeds: c.seeds,
    explainBudget: 8,
    storeSteps: c.storeSteps,
    jobs,
    cache,
    epochs: 1,
    workloads: ['mlp'],
    data: {mlp: generateSynthetic({...DEFAULT_SYNTHETIC, rows: 512})},
    timeoutMs: 60_000,
    outDir,
    command: recorded.command,
    progress: silentProgress,
  })
  return {report, recorded}
}

function golden(file: string, actual: string): void {
  const p = path.join(ROOT, 'test', 'golden', file)
  if (process.env['REPRO_UPDATE_GOLDEN'] === '1' || !existsSync(p)) {
    mkdirSync(path.dirname(p), {recursive: true})
    writeFileSync(p, actual)
  }
  assert.equal(actual, readFileSync(p, 'utf8'), `${file} differs from the golden file (REPRO_UPDATE_GOLDEN=1 to accept)`)
}

const summary = (r: AuditReport) => ({
  verdict: r.verdict,
  comparisons: r.comparisons.map((c) => ({
    role: c.role,
    a: c.a,
    b: c.b,
    first: c.divergence.first_divergence,
    counts: c.divergence.counts,
  })),
  experiments: r.attribution?.experiments,
  where: r.attribution?.where,
  residual: r.attribution?.residual,
  suspects: r.attribution?.suspects,
  noise: r.attribution?.noise_floor,
  seeds: r.attribution?.seeds,
})

describe('runAudit on recorded runs (no torch, no engine)', () => {
  for (const [name, c] of Object.entries(CASES)) {
    test(`${name}: the replayed audit reaches the recorded audit's verdict, experiments and suspects`, async () => {
      const {report, recorded} = await replay(name, c)
      assert.deepEqual(summary(report), summary(recorded))
      // The experiments' wall-clock seconds are the one thing a replay cannot reproduce: pinned
      // (kinds that ran keep a figure, so the line still says which ran).
      const es = report.attribution?.explain_seconds
      // recorded targets cannot replay ops: no replay ran, so none is timed (a stage that ran
      // nothing once added its few microseconds and the line named it)
      assert.equal(es?.replays, 0, 'no replay time without a replay')
      if (es) for (const k of ['zoom', 'knob_reruns', 'replays'] as const) es[k] = es[k] > 0 ? 1.5 : 0
      for (const width of [80, 120]) {
        const text = renderTerminal(report, {width})
        assert.deepEqual(
          text.split('\n').filter((l) => [...l].length > width),
          [],
          `no line wider than ${width}`,
        )
        golden(`audit-${name}.${width}.txt`, text)
      }
    })
  }

  test('--jobs 3: the explain stage runs its reruns side by side and reports the same experiments, in the same order, as --jobs 1', async () => {
    for (const [name, c] of Object.entries(CASES)) {
      const one = await replay(name, c)
      const three = await replay(name, c, null, null, 3)
      assert.ok((three.report.attribution?.experiments.length ?? 0) >= 1, `${name}: experiments ran`)
      assert.deepEqual(summary(three.report), summary(one.report), name)
    }
  })

  test('bookworm-trixie: threads explains the forward part; the rest starts in the update and goes to torch (Adam’s lerp)', async () => {
    const {report} = await replay('bookworm-trixie', CASES['bookworm-trixie']!)
    const at = report.attribution!
    assert.equal(at.experiments[0]!.outcome, 'moves-later')
    assert.equal(at.residual?.phase, 'update')
    const torch = at.suspects.find((s) => s.name === 'torch.version')!
    assert.match(torch.explanation!, /lerp_/)
    assert.equal(report.verdict.exit_code, 1)
  })

  test('python-threads: zoom quantifies the unstored first step, and aligning threads removes the drift', async () => {
    const {report} = await replay('python-threads', CASES['python-threads']!)
    const cross = report.comparisons.find((c) => c.role === 'cross')!
    assert.ok(cross.divergence.worst.length > 0 && cross.divergence.worst.every((w) => w.step === 0))
    assert.equal(report.attribution!.suspects[0]!.name, 'threads')
    assert.equal(report.attribution!.suspects[0]!.confidence, 'high')
  })

  test('the run cache never serves one target (or a counterfactual rerun) another target’s runs', async () => {
    // Both targets are the same interpreter, so their cache identities are equal; only the
    // target's number keeps the second target and the rerun with #1's knobs real runs.
    const cache = new RunCache(mkdtempSync(path.join(os.tmpdir(), 'repro-cache-')))
    const {report} = await replay('python-threads', CASES['python-threads']!, cache)
    for (const t of report.targets)
      assert.ok(
        t.runs.every((r) => r.cached === false),
        `${t.name} ran, not served from the cache`,
      )
    assert.equal(report.attribution!.experiments[0]!.outcome, 'disappears')
    const again = await replay('python-threads', CASES['python-threads']!, cache)
    assert.ok(
      again.report.targets.every((t) => t.runs.every((r) => r.cached === true)),
      'a second identical audit reuses every run',
    )
  })

  test('a target’s runs are reused by the next audit whatever its position there; the same target twice still runs twice', async () => {
    // image-shapes audits a shape against itself, then against its base: the shape is #1, then #2
    const cache = new RunCache(mkdtempSync(path.join(os.tmpdir(), 'repro-cache-')))
    const c = CASES['bookworm-trixie']!
    const first = await replay('bookworm-trixie', c, cache, [1])
    assert.deepEqual(
      first.report.targets[0]!.runs.map((r) => r.cached),
      [false, false],
    )
    const both = await replay('bookworm-trixie', c, cache, [0, 1])
    assert.deepEqual(
      both.report.targets.map((t) => t.runs.map((r) => r.cached)),
      [
        [false, false],
        [true, true],
      ],
      'trixie (#1 before, #2 now) comes from the cache; bookworm is new',
    )
    const twice = await replay('bookworm-trixie', c, cache, [1, 1])
    assert.deepEqual(
      twice.report.targets.map((t) => t.runs.map((r) => r.cached)),
      [
        [true, true],
        [false, false],
      ],
      'the second occurrence of one target is a run of its own',
    )
  })

  test('a config with no recording is an error naming the target, never a guess', async () => {
    const {recorded} = await replay('python-threads', CASES['python-threads']!)
    const dir = path.join(ROOT, 'fixtures', 'runs', 'python-threads')
    const target = await RecordedTarget.load(dir, 'python:/usr/bin/python3')
    const knobs = {...recorded.targets[0]!.knobs_requested, threads: 7}
    const outDir = '/tmp/repro-golden-missing'
    rmSync(outDir, {recursive: true, force: true})
    const report = await runAudit({
      targets: [{target, knobs, role: 'target'}],
      repeats: 1,
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
      command: 'test',
      progress: silentProgress,
    })
    assert.equal(report.verdict.exit_code, 2)
    assert.match(report.targets[0]!.error!.line, /no recorded run of python:\/usr\/bin\/python3 for this config/)
  })
})
