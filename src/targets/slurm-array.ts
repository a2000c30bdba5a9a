// Job arrays for the Slurm executor. The runs an audit hands Slurm together — collect's whole
// matrix, then each wave of the explain stage (its zoom and counterfactual reruns, each stage of
// its replay experiments) — go in as one `sbatch --array=0-N%J` per batch (J = --jobs, so the
// cluster, not this host, bounds how many run at once). Task i of an array runs the node's runner
// on the i-th run's staging folder. Runs whose sbatch options differ (their time limit, an image
// run's --mem/--cpus-per-task) go in separate arrays. A batch is what arrived together: it is
// submitted once no run has joined it for a moment. The queue is read once per array per poll.

import {spawnSync} from 'node:child_process'
import {promises as fs, rmSync} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {onInterrupt} from './cleanup.js'
import {type NodeStatus, parseNodeStatus} from '../artifacts/prepared.js'
import {copyNodeRunner} from './node-run.js'
import {spawnCapped} from './process.js'
import {lastLine} from './target.js'

const ENV = {PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8'}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export interface SlurmOptions {
  partition?: string
  account?: string
  /** --time for every job (Slurm's format); default: the run's timeout plus 5 minutes */
  time?: string
  /** --gres, e.g. gpu:h100:1 */
  gres?: string
  /** more sbatch arguments, as given */
  args: string[]
  /** a folder the submit host and the nodes share */
  staging: string
  /**
   * image targets: which container limits the user set (--memory, --cpus). Those are requested
   * from Slurm (--mem, --cpus-per-task); the others come from the job's allocation on the node.
   */
  limitsGiven?: {memory: boolean; cpus: boolean}
  /** at most this many of an array's tasks run at once (`%J` of --array; --jobs) */
  throttle?: number
}

/** One run of an array: its staging folder (spec.json, probe/node_runner.py) and the python that runs the runner. */
export interface ArrayTask {
  stage: string
  python: string
  /** where the run's artifacts go: a batch's tasks are numbered in this order, not in the order they arrived */
  order?: string
}

/** A run's place in its submitted array: `jobId` is Slurm's `ARRAY_TASK` (e.g. 556_3). */
export interface ArrayCell {
  jobId: string
  arrayId: string
  /** the task's stderr as Slurm wrote it (the runner's, and slurmstepd's own lines) */
  errFile: string
  /** the run is over: the array's folder goes once every task of it is */
  release(): void
}

export interface JobState {
  state: string
  reason: string
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** The array's batch script: task i runs the node's runner on run i's staging folder (pure). */
export function arrayScript(tasks: ArrayTask[]): string {
  const lines = ['#!/bin/sh', '# repro: one probe run per array task', 'case "$SLURM_ARRAY_TASK_ID" in']
  for (const [i, t] of tasks.entries()) {
    const runner = path.join(t.stage, 'probe', 'node_runner.py')
    const spec = path.join(t.stage, 'spec.json')
    lines.push(`${i}) cd ${shellQuote(t.stage)} && exec ${shellQuote(t.python)} -S ${shellQuote(runner)} ${shellQuote(spec)} ;;`)
  }
  lines.push(`*) echo "repro: this array has no task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;`, 'esac', '')
  return lines.join('\n')
}

/** Slurm's --time for a run: --slurm-time, else the run's timeout plus 5 minutes (pure). */
export function slurmTime(opts: Pick<SlurmOptions, 'time'>, timeoutSeconds: number): string {
  return opts.time ?? String(Math.ceil((timeoutSeconds + 300) / 60))
}

/**
 * sbatch's arguments for one array of `count` runs staged under `batch` (pure). `resources`: what
 * the runs need (--mem, --cpus-per-task), before the user's own --slurm-arg (the last of a
 * repeated option wins).
 */
export function sbatchArrayArgs(opts: SlurmOptions, batch: string, count: number, time: string, resources: string[] = []): string[] {
  const throttle = Math.max(1, opts.throttle ?? 1)
  return [
    '--parsable',
    '--job-name',
    'repro-probe',
    `--array=0-${count - 1}%${throttle}`,
    '--output',
    path.join(batch, 'task-%a.out'),
    '--error',
    path.join(batch, 'task-%a.err'),
    '--chdir',
    batch,
    '--time',
    time,
    ...(opts.partition ? ['--partition', opts.partition] : []),
    ...(opts.account ? ['--account', opts.account] : []),
    ...(opts.gres ? ['--gres', opts.gres] : []),
    ...resources,
    ...opts.args,
    path.join(batch, 'array.sh'),
  ]
}

/** `squeue -r -o '%i|%T|%r'` lines → each array task's state (pure). */
export function parseQueue(text: string): Map<string, JobState> {
  const out = new Map<string, JobState>()
  for (const line of text.split('\n')) {
    const [id, state, reason] = line.trim().split('|')
    if (id && state) out.set(id, {state, reason: reason ?? ''})
  }
  return out
}

interface Waiting {
  task: ArrayTask
  subject: string
  resolve(cell: ArrayCell): void
  reject(e: unknown): void
}

interface Batch {
  time: string
  resources: string[]
  waiting: Waiting[]
  timer: NodeJS.Timeout | null
  since: number
}

/** The arrays of one audit: runs join a batch, a batch becomes one sbatch --array. */
export class SlurmArrays {
  private readonly batches = new Map<string, Batch>()
  private readonly queues = new Map<string, {at: number; states: Promise<Map<string, JobState> | null>}>()
  /** how many arrays were submitted (the report's and the tests' count) */
  submitted = 0

  /**
   * @param quietMs a batch is submitted once no run has joined it for this long
   * @param maxWaitMs … or once its first run has waited this long
   */
  constructor(
    private readonly opts: SlurmOptions,
    private readonly quietMs = 400,
    private readonly maxWaitMs = 3000,
  ) {}

  /** Add a staged run to the batch of runs with the same sbatch options; resolves once its array is submitted. */
  submit(subject: string, task: ArrayTask, timeoutSeconds: number, resources: string[]): Promise<ArrayCell> {
    const time = slurmTime(this.opts, timeoutSeconds)
    const key = JSON.stringify([time, resources])
    let batch = this.batches.get(key)
    if (!batch) {
      batch = {time, resources, waiting: [], timer: null, since: Date.now()}
      this.batches.set(key, batch)
    }
    const b = batch
    return new Promise<ArrayCell>((resolve, reject) => {
      b.waiting.push({task, subject, resolve, reject})
      if (b.timer) clearTimeout(b.timer)
      const wait = Math.max(0, Math.min(this.quietMs, b.since + this.maxWaitMs - Date.now()))
      b.timer = setTimeout(() => {
        if (this.batches.get(key) === b) this.batches.delete(key)
        void this.flush(b)
      }, wait)
    })
  }

  private async flush(b: Batch): Promise<void> {
    const order = (w: Waiting) => w.task.order ?? ''
    const tasks = [...b.waiting].sort((x, y) => (order(x) < order(y) ? -1 : order(x) > order(y) ? 1 : 0))
    try {
      await fs.mkdir(this.opts.staging, {recursive: true})
      const batch = await fs.mkdtemp(path.join(this.opts.staging, 'array-'))
      await fs.writeFile(path.join(batch, 'array.sh'), arrayScript(tasks.map((t) => t.task)), {mode: 0o755})
      const r = await spawnCapped('sbatch', sbatchArrayArgs(this.opts, batch, tasks.length, b.time, b.resources), {
        env: ENV,
        timeoutMs: 60_000,
      }).catch((e: NodeJS.ErrnoException) => {
        for (const t of tasks)
          t.reject(
            new ReproError(`cannot run sbatch: ${e.code ?? e.message}`, {
              subject: t.subject,
              hint: 'install the Slurm client (Debian: slurm-client) on the submit host, or use --executor local',
            }),
          )
        return null
      })
      if (!r) return void (await fs.rm(batch, {recursive: true, force: true}))
      const arrayId = r.stdout.trim().split(/[;\n]/)[0]!.trim()
      if (r.exitCode !== 0 || !/^\d+$/.test(arrayId)) {
        await fs.rm(batch, {recursive: true, force: true})
        for (const t of tasks)
          t.reject(
            new ReproError(`sbatch refused the job: ${lastLine(r.stderrTail) || `exit ${r.exitCode}`}`, {
              subject: t.subject,
              hint: 'check --slurm-partition, --slurm-account, --slurm-gres and --slurm-arg against `sbatch`’s message and `sinfo`',
            }),
          )
        return
      }
      this.submitted++
      // Ctrl-C cancels the whole array (its pending tasks too) before repro exits
      const unregister = onInterrupt(() => {
        spawnSync('scancel', [arrayId], {stdio: 'ignore', timeout: 30_000})
        rmSync(batch, {recursive: true, force: true})
      })
      let open = tasks.length
      const release = () => {
        if (--open > 0) return
        this.queues.delete(arrayId)
        // the hook (scancel, remove the folder) stays until the folder is gone
        void fs.rm(batch, {recursive: true, force: true}).finally(unregister)
      }
      for (const [i, t] of tasks.entries()) {
        let released = false
        t.resolve({
          jobId: `${arrayId}_${i}`,
          arrayId,
          errFile: path.join(batch, `task-${i}.err`),
          release: () => {
            if (released) return
            released = true
            release()
          },
        })
      }
    } catch (e) {
      for (const t of tasks) t.reject(e)
    }
  }

  /**
   * A task's state: from one `squeue` of its array, shared by the array's tasks for half a second;
   * a task that left the queue from `scontrol` (a finished job stays there MinJobAge seconds);
   * null when Slurm forgot it.
   */
  async state(jobId: string): Promise<JobState | null> {
    const arrayId = jobId.split('_')[0]!
    let q = this.queues.get(arrayId)
    if (!q || Date.now() - q.at > 500) {
      q = {
        at: Date.now(),
        states: spawnCapped('squeue', ['-h', '-r', '-j', arrayId, '-o', '%i|%T|%r'], {env: ENV, timeoutMs: 30_000}).then(
          (r) => (r.exitCode === 0 ? parseQueue(r.stdout) : null),
          () => null,
        ),
      }
      this.queues.set(arrayId, q)
    }
    const queued = (await q.states)?.get(jobId)
    if (queued) return queued
    return scontrolState(jobId)
  }

  /** The state a task ended in, once it left RUNNING (the runner wrote its status just before it exits); at most ~15 s. */
  async finalState(jobId: string): Promise<JobState | null> {
    let state = await this.state(jobId)
    for (let i = 0; i < 30 && state && ACTIVE.includes(state.state); i++) {
      await sleep(500)
      state = await this.state(jobId)
    }
    return state
  }
}

/**
 * A fresh folder under the staging folder (`prefix`: run-, inspect-) with the node's runner in
 * it, for `work`; removed after, and on Ctrl-C too (the arrays' scancel follows).
 */
export async function withStage<T>(staging: string, prefix: string, work: (stage: string) => Promise<T>): Promise<T> {
  await fs.mkdir(staging, {recursive: true})
  const stage = await fs.mkdtemp(path.join(staging, prefix))
  const unregister = onInterrupt(() => rmSync(stage, {recursive: true, force: true}))
  try {
    await copyNodeRunner(path.join(stage, 'probe'))
    return await work(stage)
  } finally {
    // removed before the hook goes: a Ctrl-C while it is being removed still finishes the job
    await fs.rm(stage, {recursive: true, force: true})
    unregister()
  }
}

/** The host's own bound on a task passed (its runner never started, or hangs): the task is cancelled. */
export class TaskOverdue extends Error {
  constructor(readonly stderrTail: string) {
    super('overdue')
  }
}

/**
 * Wait for a task's runner to write status.json in `stage`, polling it and the queue. The runner
 * enforces `timeoutMs`; past it plus a minute of running, the task is cancelled (TaskOverdue).
 * `signal`: a sibling run failed, so this one is cancelled (and waited for) and refused. A task
 * that left the queue without a status is one line with Slurm's state and its stderr's last line.
 */
export async function awaitStatus(
  arrays: SlurmArrays,
  cell: ArrayCell,
  stage: string,
  opts: {subject: string; timeoutMs: number; signal?: AbortSignal},
): Promise<NodeStatus> {
  const {jobId} = cell
  const statusPath = path.join(stage, 'status.json')
  const stderr = () => fs.readFile(cell.errFile, 'utf8').catch(() => '')
  let pause = 200
  let gone = 0
  let runningSince: number | null = null
  for (;;) {
    const status = await readStatus(statusPath)
    if (status) return status
    if (opts.signal?.aborted) {
      // a sibling run failed: this one is not wanted; its runner removes its container on TERM
      spawnSync('scancel', [jobId], {stdio: 'ignore', timeout: 30_000})
      await arrays.finalState(jobId)
      throw new ReproError(`Slurm job ${jobId} cancelled: another run of this target and workload failed first`, {
        subject: opts.subject,
        hint: 'see the failure reported for this target',
      })
    }
    const state = await arrays.state(jobId)
    if (state?.state === 'RUNNING') runningSince ??= Date.now()
    if (runningSince !== null && Date.now() > runningSince + opts.timeoutMs + 60_000) {
      spawnSync('scancel', [jobId], {stdio: 'ignore', timeout: 30_000})
      throw new TaskOverdue((await stderr()).slice(-64 * 1024))
    }
    if (state === null || !ACTIVE.includes(state.state)) {
      // the task left the queue without a status: give the shared folder a moment, then say why
      if (++gone > 10) {
        const err = await stderr()
        throw new ReproError(
          `Slurm job ${jobId} ended ${state?.state ?? 'and left the queue'}${state?.reason && state.reason !== 'None' ? ` (${state.reason})` : ''} without the runner's status${lastLine(err) ? `: ${lastLine(err)}` : ''}`,
          {
            subject: opts.subject,
            hint: 'see `scontrol show job` and the node’s slurmd log; --staging must be shared by the submit host and the nodes',
          },
        )
      }
    }
    await sleep(pause)
    pause = Math.min(1000, pause * 1.5)
  }
}

async function readStatus(p: string): Promise<NodeStatus | null> {
  const text = await fs.readFile(p, 'utf8').catch(() => null)
  return text === null || text.length > 1024 * 1024 ? null : parseNodeStatus(text)
}

/** Slurm states of a job that has not ended yet */
export const ACTIVE = ['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED']

async function scontrolState(jobId: string): Promise<JobState | null> {
  const c = await spawnCapped('scontrol', ['show', 'job', jobId], {env: ENV, timeoutMs: 30_000}).catch(() => null)
  const m = c?.exitCode === 0 ? /JobState=(\S+)\s+Reason=(\S+)/.exec(c.stdout) : null
  return m ? {state: m[1]!, reason: m[2]!} : null
}
