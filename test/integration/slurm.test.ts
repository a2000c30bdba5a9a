// The Slurm executor against a real single-node cluster (scripts/slurm-setup.sh: Debian's Slurm
// 22.05 and munge, started by scripts/bootstrap.sh --full): the same audit as local runs give,
// the attribution's reruns and replays as Slurm jobs too, and its failures as one line with
// nothing left in the queue.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {chmodSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
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

/** Jobs staged under `staging` still in the queue: `id state reason` each. */
function queuedIn(staging: string): string[] {
  const r = spawnSync('squeue', ['-h', '-r', '-o', '%i %T %r %Z'], {encoding: 'utf8'})
  return r.stdout.split('\n').filter((l) => l.includes(staging))
}

/** Running array tasks under `staging` whose array runs probe runs (its script names run- folders, not inspect- ones). */
function runningRuns(staging: string): number {
  return queuedIn(staging).filter((l) => {
    const [, state, , dir] = l.split(' ')
    if (state !== 'RUNNING' || !dir) return false
    try {
      return readFileSync(path.join(dir, 'array.sh'), 'utf8').includes('/run-')
    } catch {
      return false
    }
  }).length
}

/** Containers (any state) a repro process started, by its pid label. */
function containersOf(pid: number): string[] {
  const r = spawnSync('docker', ['ps', '-aq', '--filter', `label=repro.pid=${pid}`], {encoding: 'utf8'})
  return r.stdout.split('\n').filter(Boolean)
}

/** Each run's Slurm cell (slurm.json): its array task (e.g. 556_3) and its array. */
function cellOf(dir: string): {job_id: string; array_id: string; image_id: string | null; node: string; allocation: {gpus: string[]}} {
  return JSON.parse(readFileSync(path.join(dir, 'slurm.json'), 'utf8'))
}

const imageId = (image: string) => spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', image], {encoding: 'utf8'}).stdout.trim()

/** Jobs of ours still in the queue (squeue), by job name. */
function queued(): string[] {
  const r = spawnSync('squeue', ['-h', '-r', '-n', 'repro-probe', '-o', '%i %T'], {encoding: 'utf8'})
  return r.stdout.split('\n').filter((l) => l.trim())
}

describe('--executor slurm on a real single-node cluster', {skip: needs('torch', 'slurm')}, () => {
  test('two pythons, 2 repeats: the same verdict and traces as local runs, all four runs one Slurm array', () => {
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
    // the whole matrix went in as one sbatch --array: its tasks numbered in run order
    const cells = slurm.targets.flatMap((t) => t.runs.map((r) => cellOf(r.dir)))
    assert.equal(cells.length, 4)
    assert.equal(new Set(cells.map((c) => c.array_id)).size, 1, JSON.stringify(cells))
    assert.deepEqual(
      cells.map((c) => c.job_id),
      [0, 1, 2, 3].map((i) => `${cells[0]!.array_id}_${i}`),
    )
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

  test('--resume after a removed cell submits exactly that one job; the kept cell is not resubmitted', async () => {
    const out = tmpDir()
    const args = [
      'audit',
      '--executor',
      'slurm',
      '--python',
      PYTHON,
      '--python',
      PYTHON,
      '--repeats',
      '1',
      '--no-explain',
      '--json',
      '--out',
      out,
      ...FAST,
    ]
    const first = repro(args, {timeoutMs: 300_000})
    assert.equal(first.status, 0, first.stderr)
    const jobOf = (dir: string) => cellOf(path.join(out, dir)).job_id
    const arrayOf = (dir: string) => Number(cellOf(path.join(out, dir)).array_id)
    const before = {kept: jobOf('t1-r1'), removed: jobOf('t2-r1')}
    // both cells were tasks of one array
    assert.equal(arrayOf('t1-r1'), arrayOf('t2-r1'))
    rmSync(path.join(out, 't2-r1'), {recursive: true})
    const second = repro([...args, '--resume'], {timeoutMs: 300_000})
    assert.equal(second.status, 0, second.stderr)
    const a = JSON.parse(first.stdout) as Report & {resume?: unknown}
    const b = JSON.parse(second.stdout) as Report & {resume?: {resumed: number; planned: number; reran: {dir: string}[]}}
    assert.deepEqual([b.resume?.resumed, b.resume?.planned, b.resume?.reran.map((r) => r.dir)], [1, 2, ['t2-r1']])
    // the kept cell still holds its first job; the removed one ran as one new job
    assert.equal(jobOf('t1-r1'), before.kept)
    assert.ok(arrayOf('t2-r1') > arrayOf('t1-r1'), `job ${jobOf('t2-r1')} after ${before.removed}`)
    assert.equal(jobOf('t2-r1'), `${arrayOf('t2-r1')}_0`)
    assert.equal(b.verdict.headline, a.verdict.headline)
    assert.deepEqual(
      b.targets.map((t) => t.trace_digest?.root),
      a.targets.map((t) => t.trace_digest?.root),
    )
    // the job may still be leaving the queue when the host has its status
    const job = `${arrayOf('t2-r1')}_`
    assert.ok(await waitFor(() => !queued().some((l) => l.startsWith(job)), 30_000), `job ${job}still queued`)
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

  test('the embedded default is refused off local, with the fix', () => {
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

    const staging = tmpDir('repro-staging-')
    const child = spawn(
      process.execPath,
      [
        path.join(ROOT, 'bin', 'run.js'),
        ...['audit', '--executor', 'slurm', '--staging', staging],
        ...['--python', slow, '--out', tmpDir(), ...FAST],
      ],
      {
        env: testEnv(),
        stdio: 'ignore',
      },
    )
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
    // the probe's job, not the interpreter's identify task that goes before it
    assert.ok(await waitFor(() => runningRuns(staging) > 0, 60_000), 'the job never ran')
    child.kill('SIGINT')
    assert.equal(await exited, 130)
    assert.ok(await waitFor(() => queued().length === 0, 30_000), queued().join('; '))
    // the run's staging folder and its array's went with it (they were left behind before)
    assert.deepEqual(readdirSync(staging), [])
  })

  describe('image targets', {skip: needs('docker', 'fixture-images')}, () => {
    test('an image, 2 repeats, each a job holding a GPU (gpu:1): the local run’s trace, the image ID each cell ran, nothing left', () => {
      const staging = tmpDir('repro-staging-')
      const out = tmpDir()
      const args = ['--image', 'repro-fixture:bookworm', '--json', ...FAST]
      const s = repro(
        ['audit', '--executor', 'slurm', '--staging', staging, '--slurm-gres', 'gpu:1', '--repeats', '2', '--out', out, ...args],
        {
          timeoutMs: 300_000,
        },
      )
      assert.equal(s.status, 0, s.stderr)
      const slurm = JSON.parse(s.stdout) as Report
      assert.match(slurm.verdict.headline, /^bitwise reproducible: 1 comparison/)
      const t = slurm.targets[0]!
      assert.equal(t.name, '#1 slurm:docker:repro-fixture:bookworm')
      assert.equal(t.identity?.details['executor'], 'slurm')
      const id = imageId('repro-fixture:bookworm')
      assert.equal(t.identity?.details['image_id_ran'], id)
      assert.equal(new Set(t.runs.map((r) => cellOf(r.dir).array_id)).size, 1)
      for (const run of t.runs) {
        const cell = cellOf(run.dir)
        assert.equal(cell.image_id, id)
        assert.equal(cell.node.length > 0, true)
        // placed on one of the node's two GRES gpus (placement only: the container gets no GPU here)
        assert.equal(cell.allocation.gpus.length, 1)
      }
      const local = repro(['audit', '--repeats', '1', '--no-cache', '--out', tmpDir(), ...args], {timeoutMs: 300_000})
      assert.equal(local.status, 0, local.stderr)
      assert.equal(t.trace_digest?.root, (JSON.parse(local.stdout) as Report).targets[0]!.trace_digest?.root)
      assert.deepEqual(queuedIn(staging), [])
      assert.deepEqual(containersOf(s.pid), [])
    })

    test('a GRES no node has (gpu:9) is one line at submission, exit 2', () => {
      const r = repro([
        'audit',
        '--executor',
        'slurm',
        '--slurm-gres',
        'gpu:9',
        '--image',
        'repro-fixture:bookworm',
        '--out',
        tmpDir(),
        ...FAST,
      ])
      assert.equal(r.status, 2, r.stdout + r.stderr)
      assert.match(
        unwrap(r.stdout + r.stderr),
        /slurm:docker:repro-fixture:bookworm: sbatch refused the job: .*Requested node configuration is not available — check --slurm-partition, --slurm-account, --slurm-gres/,
      )
    })

    test('a tag moved between two cells (an array submitted held, its tasks released one by one): one line with both IDs and the fix, exit 2', async () => {
      const tag = `repro-retag-test:${process.pid}`
      const derived = `repro-retag-test:derived-${process.pid}`
      assert.equal(spawnSync('docker', ['tag', 'repro-fixture:bookworm', tag]).status, 0)
      const made = spawnSync('docker', ['create', 'repro-fixture:bookworm'], {encoding: 'utf8'}).stdout.trim()
      assert.equal(spawnSync('docker', ['commit', '--change', 'ENV REPRO_RETAGGED=1', made, derived]).status, 0)
      spawnSync('docker', ['rm', made])
      try {
        const staging = tmpDir('repro-staging-')
        const child = spawn(
          process.execPath,
          [
            path.join(ROOT, 'bin', 'run.js'),
            ...['audit', '--executor', 'slurm', '--staging', staging, '--slurm-arg=--hold', '--image', tag, '--repeats', '2'],
            ...['--out', tmpDir(), ...FAST],
          ],
          {env: testEnv(), stdio: ['ignore', 'pipe', 'pipe']},
        )
        let output = ''
        child.stdout.on('data', (d) => (output += d))
        child.stderr.on('data', (d) => (output += d))
        const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
        const held = () =>
          queuedIn(staging)
            .filter((l) => l.includes('JobHeld'))
            .map((l) => l.split(' ')[0]!)
            .sort()[0]
        const release = async () => {
          assert.ok(await waitFor(() => Boolean(held()), 120_000), `no held job: ${queuedIn(staging).join('; ')}`)
          assert.equal(spawnSync('scontrol', ['release', held()!]).status, 0)
        }
        await release() // the image's inspect task (the launch plan is made from the node's answer)
        await release() // task 0 (r1) runs the image the tag names now
        // retag once r1 is over and r2 still held
        assert.ok(await waitFor(() => queuedIn(staging).length === 1, 120_000), `r1 never ended: ${queuedIn(staging).join('; ')}`)
        assert.equal(spawnSync('docker', ['tag', derived, tag]).status, 0)
        await release()
        assert.equal(await exited, 2, output)
        const [a, b] = [imageId('repro-fixture:bookworm'), imageId(derived)].map((i) => i.slice(0, 'sha256:'.length + 12))
        assert.match(
          unwrap(output),
          new RegExp(
            `slurm:docker:${tag}: run t1-r2 ran image ${b}, but run t1-r1 ran ${a}: the tag ${tag} moved during the audit — pin the image`,
          ),
        )
        assert.deepEqual(queuedIn(staging), [])
        assert.deepEqual(containersOf(child.pid!), [])
      } finally {
        spawnSync('docker', ['rmi', tag, derived])
      }
    })

    test('a container that fails and one past --timeout: one line each with the job, its state and its stderr; no container left', () => {
      const r = repro(
        [
          ...['audit', '--executor', 'slurm', '--image', 'repro-fixture:no-torch', '--image', 'repro-fixture:hang', '--jobs', '2'],
          ...['--timeout', '4', '--repeats', '1', '--out', tmpDir(), ...FAST],
        ],
        {timeoutMs: 300_000},
      )
      assert.equal(r.status, 2, r.stdout + r.stderr)
      const text = unwrap(r.stdout + r.stderr)
      assert.match(
        text,
        /#1 slurm:docker:repro-fixture:no-torch: python \(\S+\) runs but has no PyTorch \(import torch failed\) \(Slurm job \d+_0 on \S+: FAILED; last stderr line: ModuleNotFoundError: No module named 'torch'\) — /,
      )
      assert.match(
        text,
        /#2 slurm:docker:repro-fixture:hang: the probe timed out after 4 s; the container was killed and removed \(Slurm job \d+_1 on \S+: FAILED/,
      )
      assert.deepEqual(containersOf(r.pid), [])
    })

    test('Slurm’s own time limit (--slurm-time 1, minutes): TIMEOUT in one line with the fix, the container removed, the other repeat cancelled, the queue empty', async () => {
      const staging = tmpDir('repro-staging-')
      // the probe hangs; the run's own --timeout is far away, so Slurm's limit ends the job first
      const r = repro(
        [
          ...['audit', '--executor', 'slurm', '--staging', staging, '--slurm-time', '1', '--timeout', '900'],
          ...['--image', 'repro-fixture:hang', '--out', tmpDir(), ...FAST],
        ],
        {timeoutMs: 400_000},
      )
      assert.equal(r.status, 2, r.stdout + r.stderr)
      const text = unwrap(r.stdout + r.stderr)
      const ended =
        /#1 slurm:docker:repro-fixture:hang: Slurm ended job (\d+)_0 \(TIMEOUT(, \w+)?\) before the probe finished; its container was removed.* — raise --slurm-time/.exec(
          text,
        )
      assert.ok(ended, text)
      // the second repeat (task 1, throttled behind it) was cancelled once the first failed, not left to time out too
      const task1 = () =>
        (
          readFileSync('/var/log/slurm/jobcomp.txt', 'utf8')
            .split('\n')
            .find((l) => l.includes(`ArrayJobId=${ended[1]} ArrayTaskId=1 `)) ?? ''
        ).match(/JobState=(\S+)/)?.[1]
      assert.ok(await waitFor(() => Boolean(task1()), 30_000), `no completion record of task ${ended[1]}_1`)
      assert.equal(task1(), 'CANCELLED')
      assert.ok(
        await waitFor(() => queuedIn(staging).length === 0 && containersOf(r.pid).length === 0, 30_000),
        queuedIn(staging).join('; '),
      )
    })

    test('Ctrl-C while an image runs on a node: scancel, the node’s runner removes its container, the queue is empty', async () => {
      const staging = tmpDir('repro-staging-')
      const child = spawn(
        process.execPath,
        [
          path.join(ROOT, 'bin', 'run.js'),
          ...['audit', '--executor', 'slurm', '--staging', staging, '--image', 'repro-fixture:hang', '--out', tmpDir(), ...FAST],
        ],
        {env: testEnv(), stdio: 'ignore'},
      )
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
      assert.ok(await waitFor(() => containersOf(child.pid!).length > 0, 60_000), 'the container never started')
      child.kill('SIGINT')
      assert.equal(await exited, 130)
      assert.ok(await waitFor(() => queuedIn(staging).length === 0 && containersOf(child.pid!).length === 0, 30_000))
      assert.deepEqual(readdirSync(staging), [])
    })

    test('a submit host without an engine: each image inspected and each python identified by a task on a node (an entrypoint read there), a missing one named with the node', () => {
      const staging = tmpDir('repro-staging-')
      const out = tmpDir()
      const missing = `repro-fixture:absent-${process.pid}`
      const r = repro(
        [
          ...['audit', '--executor', 'slurm', '--staging', staging],
          ...['--image', 'repro-fixture:ngc-banner', '--image', 'repro-fixture:entrypoint-noexec'],
          ...['--image', missing, '--python', PYTHON, '--python', '/nonexistent/bin/python3'],
          ...['--repeats', '1', '--out', out, '--json', ...FAST],
        ],
        // no engine answers here: only the nodes' (sbatch hands the job a clean environment)
        {env: {...testEnv(), DOCKER_HOST: 'unix:///nonexistent/docker.sock'}, timeoutMs: 300_000},
      )
      assert.equal(r.status, 2, r.stdout + r.stderr)
      const report = JSON.parse(readFileSync(path.join(out, 'report.json'), 'utf8')) as Report & {
        targets: {error?: {message: string; hint: string}}[]
      }
      const [kept, noexec, absent, python, nowhere] = report.targets
      const details = kept!.identity!.details
      assert.match(String(details['entrypoint_treatment']), /^kept: a shell script \(\/opt\/nvidia\/nvidia_entrypoint\.sh, #!\/bin\/bash\)/)
      assert.equal(details['id'], imageId('repro-fixture:ngc-banner'))
      assert.match(String(details['engine_version']), /\d+\.\d+/)
      assert.equal(kept!.runs.length, 1)
      assert.match(noexec!.error!.message, /entrypoint \/entrypoint\.sh \(mode 0644\) is not executable/)
      assert.match(absent!.error!.message, new RegExp(`^on node \\S+: image ${missing} is not present and could not be pulled`))
      assert.match(absent!.error!.hint, /build or load the image on the nodes/)
      // a python target's interpreter is identified on the node too
      assert.match(String(python!.identity!.details['identified_on']), /^node \S+$/)
      assert.match(nowhere!.error!.message, /^on node \S+: \/nonexistent\/bin\/python3 does not exist$/)
      assert.match(nowhere!.error!.hint, /as the nodes name it/)
      // the matrix waits for the inspect tasks: the python's run and the image's are one array
      assert.equal(cellOf(path.join(out, 't4-r1')).array_id, cellOf(path.join(out, 't1-r1')).array_id)
      assert.deepEqual(queuedIn(staging), [])
      assert.deepEqual(readdirSync(staging), [])
      const left = spawnSync('docker', ['ps', '-aq', '--filter', 'label=repro=1', '--filter', 'name=repro-inspect'], {encoding: 'utf8'})
      assert.equal(left.stdout.trim(), '')
    })
  })
})
