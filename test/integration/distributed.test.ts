// Data-parallel training (world_size > 1) end to end with the host's python and real gloo ranks:
// the attention workload at world size 2 against 1 (only reduction order), the MLP (per-rank
// BatchNorm and dropout), world size 2 against itself (replicas agree), a world size the batch
// cannot be split by. Rank-level faults (a killed rank, a planted replica drift) are probe tests
// (probe/tests/test_ddp.py).
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {PYTHON, repro, SHARED_CACHE, tmpDir, unwrap} from './helpers.js'
import {needs} from './prereqs.js'

const FAST = ['--epochs', '1', '--rows', '512']

interface Report {
  verdict: {exit_code: number; headline: string}
  targets: {runs: {knobs_effective: Record<string, unknown>; distributed?: {world_size: number; replicas: {drift: unknown}}}[]}[]
  comparisons: {role: string; divergence: {bitwise_identical: boolean; first_divergence: {entry: string; phase: string} | null}}[]
  attribution: {
    experiments: {knobs: {name: string}[]; outcome: string}[]
    suspects: {kind: string; name: string; confidence: string; evidence: string; explanation: string | null}[]
  }
}

function audit(workload: string, extra: string[]): {status: number | null; report: Report; stderr: string} {
  const r = repro(
    ['audit', '--python', PYTHON, '--python', PYTHON, '--workload', workload, '--json', '--out', tmpDir(), ...FAST, ...extra],
    {
      cacheDir: SHARED_CACHE,
      timeoutMs: 600_000,
    },
  )
  return {status: r.status, report: JSON.parse(r.stdout) as Report, stderr: r.stderr}
}

describe('world size as a knob (gloo ranks on the CPU)', {skip: needs('torch')}, () => {
  test('attention at world size 2 vs 1: exit 1, world_size the high suspect confirmed by its rerun, only reduction order', () => {
    const {status, report, stderr} = audit('attention', ['--set', '2:world_size=2'])
    assert.equal(status, 1, stderr)
    assert.equal(report.targets[1]!.runs[0]!.knobs_effective['world_size'], 2)
    assert.equal(report.targets[1]!.runs[0]!.distributed?.world_size, 2)
    const top = report.attribution.suspects[0]!
    assert.equal(top.name, 'world_size')
    assert.equal(top.confidence, 'high')
    assert.match(top.evidence, /rerunning #2 with world_size=1/)
    assert.match(top.explanation ?? '', /only reduction order/)
    const e = report.attribution.experiments.find((x) => x.knobs.length === 1 && x.knobs[0]!.name === 'world_size')
    assert.equal(e?.outcome, 'disappears')
    // ddp_backend and bucket_cap_mb are in effect only at world size 2: not knobs that differ here
    assert.ok(!report.attribution.experiments.some((x) => x.knobs.some((k) => k.name !== 'world_size')))
  })

  test('the MLP at world size 2: per-rank BatchNorm and dropout named, first divergence in the forward', () => {
    const {status, report, stderr} = audit('mlp', ['--set', '2:world_size=2'])
    assert.equal(status, 1, stderr)
    const cross = report.comparisons.find((c) => c.role === 'cross')!
    assert.equal(cross.divergence.first_divergence?.phase, 'forward')
    const top = report.attribution.suspects[0]!
    assert.equal(top.name, 'world_size')
    assert.match(top.explanation ?? '', /per-rank BatchNorm/)
    assert.match(top.explanation ?? '', /per-rank dropout/)
  })

  test('world size 2 against itself: bitwise reproducible, replicas agree in every run', () => {
    const {status, report, stderr} = audit('attention', ['--set', 'world_size=2', '--repeats', '2'])
    assert.equal(status, 0, stderr)
    for (const t of report.targets) for (const r of t.runs) assert.equal(r.distributed?.replicas.drift, null)
    const out = repro(
      ['audit', '--python', PYTHON, '--python', PYTHON, '--workload', 'attention', '--set', 'world_size=2', '--out', tmpDir(), ...FAST],
      {
        cacheDir: SHARED_CACHE,
        timeoutMs: 600_000,
      },
    )
    assert.equal(out.status, 0, out.stderr)
    assert.match(unwrap(out.stdout), /#1 world size 2 \(gloo\): replicas agree/)
  })

  test('a world size the batch of 64 cannot be split by: one line naming the target, exit 2', () => {
    const r = repro(['audit', '--python', PYTHON, '--python', PYTHON, '--set', '2:world_size=3', '--out', tmpDir()])
    assert.equal(r.status, 2)
    assert.match(r.stderr, /#2 python:.*world_size 3 does not split the batch of 64 rows/)
    assert.equal(r.stderr.trim().split('\n').length <= 2, true, r.stderr)
  })
})
