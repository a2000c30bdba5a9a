// The Slurm executor against a real single-node cluster (scripts/slurm-setup.sh: Debian's Slurm
// 22.05 and munge, started by scripts/bootstrap.sh --full): the same audit as local runs give,
// the attribution's reruns and replays as Slurm jobs too, and its failures as one line with
// nothing left in the queue.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {chmodSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {PYTHON, repro, ROOT, testEnv, tmpDir, unwrap, waitFor} from './helpers.js'
import {needs} from './prereqs.js'

const FAST = ['--epochs', '1', '--rows', '512']

interface Report {
  verdict: {exit_code: number; headline: string}
  targets: {name: string; identity: {details: Record<string, unknown>} | null; trace_digest?: {root: string}; runs: {dir: string}[]}[]
  comparisons: {role: string; divergence: {bitwise_identical: boolean}}[]
  attribution: {experiments: {knobs: {name: string}[]; outcome: string}[]; suspects: {name: string; confidence: string}[]}
}

/** Jobs of ours still in the queue (squeue), by job name. */
function queued(): string[] {
  const r = spawnSync('squeue', ['-h', '-n', 'repro-probe', '-o', '%i %T'], {encoding: 'utf8'})
  return r.stdout.split('\n').filter((l) => l.trim())
}

describe('--executor slurm on a real single-node cluster', {skip: needs('torch', 'slurm')}, () => {
  test('two pythons, 2 repeats: the same verdict and traces as local runs, each run a Slurm job', () => {
    const staging = tmpDir('repro-staging-')
    const s = repro(
      [
        'audit',
        '--executor',
        'slurm',
        '--staging',
        staging,
        '--python',
        PYTHON,
        '--python',
        PYTHON,
        '--repeats',
        '2',
        '--json',
        '--out',
        tmpDir(),
        ...FAST,
      ],
      {
        timeoutMs: 600_000,
      },
    )
    assert.equal(s.status, 0, s.stderr)
    const slurm = JSON.parse(s.stdout) as Report
    assert.match(slurm.verdict.headline, /^bitwise reproducible: 3 comparison/)
    assert.equal(slurm.targets[0]!.name, `#1 slurm:${PYTHON}`)
    assert.equal(slurm.targets[0]!.identity?.details['executor'], 'slurm')
    const local = repro(['audit', '--python', PYTHON, '--repeats', '1', '--json', '--no-cache', '--out', tmpDir(), ...FAST], {
      timeoutMs: 600_000,
    })
    assert.equal(local.status, 0, local.stderr)
    const here = JSON.parse(local.stdout) as Report
    // same probe, same interpreter, same host: the trace a Slurm job records is bitwise the local one
    assert.equal(slurm.targets[0]!.trace_digest?.root, here.targets[0]!.trace_digest?.root)
    assert.deepEqual(queued(), [])
  })

  test('a knob difference: attribution reruns it as a Slurm job and confirms it', () => {
    const r = repro(
      [
        'audit',
        '--executor',
        'slurm',
        '--python',
        PYTHON,
        '--python',
        PYTHON,
        '--set',
        '2:threads=2',
        '--workload',
        'cnn',
        '--json',
        '--out',
        tmpDir(),
        ...FAST,
      ],
      {
        timeoutMs: 900_000,
      },
    )
    assert.equal(r.status, 1, r.stderr)
    const report = JSON.parse(r.stdout) as Report
    assert.equal(report.attribution.suspects[0]?.name, 'threads')
    assert.equal(report.attribution.experiments.find((e) => e.knobs[0]?.name === 'threads')?.outcome, 'disappears')
  })

  test('a partition that does not exist: one line naming the target and the fix, exit 2', () => {
    const r = repro([
      'audit',
      '--executor',
      'slurm',
      '--slurm-partition',
      'no-such-partition',
      '--python',
      PYTHON,
      '--out',
      tmpDir(),
      ...FAST,
    ])
    assert.equal(r.status, 2, r.stdout + r.stderr)
    assert.match(unwrap(r.stdout + r.stderr), /sbatch refused the job: .*(invalid partition|Invalid partition).* — check --slurm-partition/)
  })

  test('images and the embedded default are refused off local, with the fix', () => {
    const a = repro(['audit', '--executor', 'slurm', '--image', 'repro-fixture:trixie', '--out', tmpDir()])
    assert.equal(a.status, 2)
    assert.match(unwrap(a.stderr), /--executor slurm runs --python targets; repro-fixture:trixie is an image/)
    const b = repro(['audit', '--executor', 'slurm', '--out', tmpDir()])
    assert.equal(b.status, 2)
    assert.match(unwrap(b.stderr), /--executor slurm needs targets/)
  })

  test('a run past --timeout is one line, exit 2; Ctrl-C cancels the job (scancel) and leaves the queue empty', async () => {
    const dir = tmpDir('repro-slow-')
    const slow = path.join(dir, 'python3')
    // a python whose probe never finishes (the node's runner, started with the same python, does)
    writeFileSync(slow, `#!/bin/sh\ncase "$*" in *repro_probe*) sleep 3600 ;; esac\nexec ${PYTHON} "$@"\n`)
    chmodSync(slow, 0o755)
    const r = repro(['audit', '--executor', 'slurm', '--python', slow, '--timeout', '5', '--out', tmpDir(), ...FAST], {timeoutMs: 300_000})
    assert.equal(r.status, 2, r.stdout + r.stderr)
    assert.match(unwrap(r.stdout + r.stderr), /timed out after 5 s/)
    assert.ok(await waitFor(() => queued().length === 0, 30_000), queued().join('; '))

    const child = spawn(
      process.execPath,
      [path.join(ROOT, 'bin', 'run.js'), 'audit', '--executor', 'slurm', '--python', slow, '--out', tmpDir(), ...FAST],
      {
        env: testEnv(),
        stdio: 'ignore',
      },
    )
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    assert.ok(await waitFor(() => queued().some((l) => l.includes('RUNNING')), 60_000), 'the job never ran')
    child.kill('SIGINT')
    assert.equal(await exited, 130)
    assert.ok(await waitFor(() => queued().length === 0, 30_000), queued().join('; '))
  })
})
