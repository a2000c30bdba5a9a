// --script-nproc: the user's data-parallel script under torchrun with the host's python (probe/tests/
// scripts/ddp_gloo.py: gloo ranks, a model in DistributedDataParallel, each rank its own slice). Two
// targets at world size 2 agree and their replicas agree; a world-size-1 run of the same script
// compared with a world-size-2 run compares only the state entries and shows torchrun's
// OMP_NUM_THREADS in the fingerprint diff; the launch mistakes and a notebook are one line, exit 2.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import {PYTHON, ROOT, repro, tmpDir, unwrap} from './helpers.js'
import {needs} from './prereqs.js'

const SCRIPTS = path.join(ROOT, 'probe', 'tests', 'scripts')
const SCRIPT = ['--script', 'ddp_gloo.py', '--project', SCRIPTS, '--cwd', SCRIPTS]

interface Run {
  dir: string
  distributed?: {world_size: number; backend: string; replicas: {checked: (number | 'end')[]; drift: unknown}}
  script?: {steps_recorded: number}
}
interface Report {
  verdict: {status: string; exit_code: number; headline: string}
  targets: {name: string; status: string; error?: {line: string} | null; runs: Run[]}[]
  comparisons: {
    role: string
    divergence: {bitwise_identical: boolean; counts?: {entries: number}}
    fingerprint_changes: {path: string; a: unknown; b: unknown}[]
  }[]
}

function audit(args: string[], status: number): Report {
  const r = repro(['audit', ...SCRIPT, ...args, '--json', '--out', tmpDir()], {cwd: SCRIPTS})
  assert.equal(r.status, status, r.stdout.slice(-3000) + r.stderr.slice(-3000))
  return JSON.parse(r.stdout) as Report
}

describe('--script-nproc: a data-parallel script under torchrun (real probe)', {skip: needs('torch')}, () => {
  let ws2: Report | undefined

  test('world size 2 on two targets: reproducible, the replicas agree, rank 0 traced with the unwrapped names', () => {
    ws2 = audit(['--python', PYTHON, '--python', PYTHON, '--script-nproc', '2', '--repeats', '1'], 0)
    assert.equal(ws2.verdict.status, 'reproducible', ws2.verdict.headline)
    for (const t of ws2.targets) {
      const run = t.runs[0]!
      assert.deepEqual(run.distributed, {world_size: 2, backend: 'gloo', replicas: {checked: ['end'], drift: null}})
      assert.equal(run.script!.steps_recorded, 4)
    }
    assert.equal(ws2.comparisons.find((c) => c.role === 'cross')!.divergence.bitwise_identical, true)
  })

  test('world size 1 against 2: only the state compares, OMP_NUM_THREADS in the diff, and the report says why', () => {
    const ws1 = audit(['--python', PYTHON, '--repeats', '1'], 0)
    const one = ws1.targets[0]!.runs[0]!
    assert.equal(one.distributed, undefined)
    // the first test's world-size-2 run (its own audit when that test is filtered out)
    const two = (ws2 ?? audit(['--python', PYTHON, '--script-nproc', '2', '--repeats', '1'], 0)).targets[0]!.runs[0]!
    const json = repro(['compare', one.dir, two.dir, '--json'])
    assert.ok(json.status === 0 || json.status === 1, json.stderr)
    const pair = (JSON.parse(json.stdout) as Report).comparisons[0]!
    // 4 steps of 4 grad/ and 4 param/ entries, and init's 4 param/ (fwd/, out and loss are per-rank)
    assert.equal(pair.divergence.counts!.entries, 36)
    // torchrun sets OMP_NUM_THREADS=1 for N > 1: recorded, and in the diff
    const omp = pair.fingerprint_changes.find((c) => c.path === 'env.OMP_NUM_THREADS')
    assert.equal(omp?.b, '1', JSON.stringify(pair.fingerprint_changes))
    if (process.env['OMP_NUM_THREADS'] === undefined) {
      const omp = pair.fingerprint_changes.find((c) => c.path === 'env.OMP_NUM_THREADS')
      assert.ok(omp, JSON.stringify(pair.fingerprint_changes.map((c) => c.path)))
      assert.equal(omp.b, '1')
    }
    const text = unwrap(repro(['compare', one.dir, two.dir], {env: {COLUMNS: '200'}}).stdout)
    assert.match(
      text,
      /World sizes 1, 2: the script splits its own data: only gradients, parameters, buffers and optimizer state are compared across world sizes\./,
    )
  })

  test('a notebook with --script-nproc 2: one line, exit 2, nothing run', () => {
    const r = repro(
      ['audit', '--script', 'lecture.ipynb', '--project', SCRIPTS, '--python', PYTHON, '--script-nproc', '2', '--out', tmpDir()],
      {
        cwd: SCRIPTS,
      },
    )
    assert.equal(r.status, 2, r.stdout + r.stderr)
    const line = unwrap(r.stderr)
    assert.match(line, /--script-nproc.*lecture\.ipynb is a notebook: --script-nproc 2 starts ranks with torchrun/)
    assert.match(line, /jupyter nbconvert --to script lecture\.ipynb/)
  })

  for (const [mode, words] of [
    ['env', /init_process_group with env:\/\/ but RANK\/WORLD_SIZE\/MASTER_ADDR\/MASTER_PORT are not set.*--script-nproc N/],
    ['spawn', /trains in torch\.multiprocessing\.spawn children, which are not traced.*launch the ranks with --script-nproc N/],
    ['nccl', /asks init_process_group for the nccl backend, which needs CUDA.*use the gloo backend/],
  ] as const) {
    test(`a launch mistake (${mode}): the target's one line, exit 2`, () => {
      const report = audit(['--python', PYTHON, '--script-args', `--mode ${mode}`, '--repeats', '1'], 2)
      const line = unwrap(report.targets[0]!.error!.line)
      assert.match(line, words)
      assert.doesNotMatch(line, /Traceback/)
    })
  }
})
