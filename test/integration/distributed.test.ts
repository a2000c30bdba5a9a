// Data-parallel training (world_size > 1) end to end with the host's python and real gloo ranks:
// the attention workload at world size 2 against 1 (only reduction order), the MLP (per-rank
// BatchNorm and dropout), world size 2 against itself (replicas agree), a world size the batch
// cannot be split by. Rank-level faults (a killed rank, a planted replica drift) are probe tests
// (probe/tests/test_ddp.py).
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {chmodSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {PYTHON, repro, ROOT, SHARED_CACHE, sleep, testEnv, tmpDir, unwrap, waitFor} from './helpers.js'
import {needs} from './prereqs.js'

const FAST = ['--epochs', '1', '--rows', '512']

interface Report {
  verdict: {exit_code: number; headline: string}
  targets: {runs: {knobs_effective: Record<string, unknown>; distributed?: {world_size: number; replicas: {drift: unknown}}}[]}[]
  comparisons: {role: string; divergence: {bitwise_identical: boolean; first_divergence: {entry: string; phase: string} | null}}[]
  attribution: {
    experiments: {knobs: {name: string}[]; outcome: string}[]
    suspects: {kind: string; name: string; confidence: string; evidence: string; explanation: string | null}[]
    explain_seconds?: {zoom: number; knob_reruns: number; replays: number}
  }
}

/** pids of live processes whose environment holds `marker` (the ranks inherit the probe's). */
function withMarker(marker: string): number[] {
  const found: number[] = []
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      if (readFileSync(`/proc/${pid}/environ`).includes(marker)) found.push(Number(pid))
    } catch {
      // gone, or not ours
    }
  }
  return found
}

/**
 * A python whose sitecustomize (on its PYTHONPATH, which the ranks inherit) stops rank 1 forever
 * after its 2nd optimizer step, so rank 0 waits in the all-reduce.
 */
function pythonWithHangingRank(): string {
  const dir = tmpDir('repro-rank-hang-')
  writeFileSync(
    path.join(dir, 'sitecustomize.py'),
    [
      'import time',
      'import torch',
      'import torch.distributed as dist',
      'original = torch.optim.Adam.step',
      'count = [0]',
      'def step(self, *a, **k):',
      '    out = original(self, *a, **k)',
      '    if dist.is_initialized() and dist.get_rank() == 1:',
      '        count[0] += 1',
      '        if count[0] == 2:',
      '            time.sleep(3600)',
      '    return out',
      'torch.optim.Adam.step = step',
      '',
    ].join('\n'),
  )
  const python = path.join(dir, 'python3')
  writeFileSync(python, `#!/bin/sh\nPYTHONPATH=${dir}\${PYTHONPATH:+:$PYTHONPATH} exec ${PYTHON} "$@"\n`)
  chmodSync(python, 0o755)
  return python
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
    // the rerun's seconds are reported apart from the replays' (none here: the knob explains it)
    const took = report.attribution.explain_seconds
    assert.ok(took && took.knob_reruns > 0 && took.replays === 0, JSON.stringify(took))
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

  test('a rank that hangs: --timeout ends the run with one line, exit 2, no rank left; Ctrl-C the same', async () => {
    const marker = `RANK_MARK=timeout-${process.pid}`
    const args = ['audit', '--python', pythonWithHangingRank(), '--set', 'world_size=2']
    const r = repro([...args, '--set', `env.${marker}`, '--timeout', '25', '--out', tmpDir(), ...FAST], {timeoutMs: 300_000})
    assert.equal(r.status, 2, r.stdout + r.stderr)
    assert.match(unwrap(r.stdout + r.stderr), /timed out after 25 s/)
    assert.deepEqual(withMarker(marker), [])

    const mark2 = `RANK_MARK=sigint-${process.pid}`
    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'bin', 'run.js'), ...args, '--set', `env.${mark2}`, '--out', tmpDir(), ...FAST],
      {
        env: testEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stderr = ''
    child.stderr.on('data', (d) => {
      stderr += String(d)
    })
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    // the probe and both ranks are up (rank 1 then hangs after its 2nd step)
    assert.ok(await waitFor(() => withMarker(mark2).length >= 3, 120_000), 'the ranks never started')
    await sleep(500)
    child.kill('SIGINT')
    const code = await exited
    assert.equal(code, 130, stderr)
    assert.ok(await waitFor(() => withMarker(mark2).length === 0, 10_000), `left: ${withMarker(mark2).join(' ')}`)
  })
})
