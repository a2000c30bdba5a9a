// The Slurm executor (`--executor slurm`): a python target's probe runs become Slurm jobs. Each
// run is staged in a folder the submit host and the nodes share (`--staging`): the probe, the
// run's inputs and its run spec (`repro.prepared/2`: interpreter, argv, env, timeout); the job
// runs probe/node_runner.py (stdlib python, no node.js on the node), which writes status.json
// atomically; the host polls status.json and squeue, copies the artifacts back and turns the
// outcome into the same ProbeOutcome a local run gives. Compare, attribution and reports stay
// local. Ctrl-C cancels the job (scancel) before repro exits.

import {spawnSync} from 'node:child_process'
import {promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {onInterrupt} from './cleanup.js'
import {probeRoot} from './probe-path.js'
import {spawnCapped} from './process.js'
import type {PythonTarget} from './python.js'
import {lastLine, type ProbeJob, type ProbeOutcome, type Target, type TargetIdentity} from './target.js'

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
}

export const RUN_SPEC_SCHEMA = 'repro.prepared/2'

/** The run spec node_runner.py reads: paths starting with ./ are relative to the spec's folder. */
export interface RunSpec {
  schema: typeof RUN_SPEC_SCHEMA
  python: string
  argv: string[]
  env: Record<string, string>
  timeout_seconds: number
  status: string
}

interface NodeStatus {
  exit: number | null
  signal: string | null
  seconds: number
  timed_out: boolean
  terminated: string | null
  stderr_tail: string
  node: string
}

const ENV = {PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C.UTF-8'}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** sbatch's arguments for one staged run (pure). */
export function sbatchArgs(opts: SlurmOptions, stage: string, python: string, timeoutSeconds: number): string[] {
  const minutes = Math.ceil((timeoutSeconds + 300) / 60)
  return [
    '--parsable',
    '--job-name',
    'repro-probe',
    '--output',
    path.join(stage, 'slurm.out'),
    '--error',
    path.join(stage, 'slurm.err'),
    '--chdir',
    stage,
    '--time',
    opts.time ?? String(minutes),
    ...(opts.partition ? ['--partition', opts.partition] : []),
    ...(opts.account ? ['--account', opts.account] : []),
    ...(opts.gres ? ['--gres', opts.gres] : []),
    ...opts.args,
    '--wrap',
    `exec ${shellQuote(python)} -S ${shellQuote(path.join(stage, 'probe', 'node_runner.py'))} ${shellQuote(path.join(stage, 'spec.json'))}`,
  ]
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

export class SlurmTarget implements Target {
  readonly kind = 'python' as const
  readonly name: string

  constructor(
    private readonly inner: PythonTarget,
    private readonly opts: SlurmOptions,
  ) {
    this.name = `slurm:${inner.interpreter}`
  }

  async identify(): Promise<TargetIdentity> {
    const id = await this.inner.identify()
    return {...id, details: {...id.details, executor: 'slurm'}}
  }

  cacheIdentity(): Promise<Record<string, unknown>> {
    return this.inner.cacheIdentity()
  }

  async runProbeImpl(job: ProbeJob): Promise<ProbeOutcome> {
    await fs.mkdir(this.opts.staging, {recursive: true})
    const stage = await fs.mkdtemp(path.join(this.opts.staging, 'run-'))
    const t0 = Date.now()
    const seconds = () => (Date.now() - t0) / 1000
    try {
      await fs.cp(path.join(probeRoot(), 'repro_probe'), path.join(stage, 'probe', 'repro_probe'), {recursive: true})
      await fs.copyFile(path.join(probeRoot(), 'node_runner.py'), path.join(stage, 'probe', 'node_runner.py'))
      await fs.cp(job.inputDir, path.join(stage, 'inputs'), {recursive: true})
      const timeoutSeconds = Math.max(1, Math.round(job.timeoutMs / 1000))
      const spec: RunSpec = {
        schema: RUN_SPEC_SCHEMA,
        python: this.inner.interpreter,
        argv: ['-m', 'repro_probe', job.mode, '--config', './inputs/config.json', '--out', './out'],
        env: {...job.env, PYTHONPATH: './probe'},
        timeout_seconds: timeoutSeconds,
        status: 'status.json',
      }
      await fs.writeFile(path.join(stage, 'spec.json'), JSON.stringify(spec, null, 2))
      const submitted = await spawnCapped('sbatch', sbatchArgs(this.opts, stage, this.inner.interpreter, timeoutSeconds), {
        env: ENV,
        timeoutMs: 60_000,
      }).catch((e: NodeJS.ErrnoException) => {
        throw new ReproError(`cannot run sbatch: ${e.code ?? e.message}`, {
          subject: this.name,
          hint: 'install the Slurm client (Debian: slurm-client) on the submit host, or use --executor local',
        })
      })
      const jobId = submitted.stdout.trim().split(/[;\n]/)[0]!.trim()
      if (submitted.exitCode !== 0 || !/^\d+$/.test(jobId))
        throw new ReproError(`sbatch refused the job: ${lastLine(submitted.stderrTail) || `exit ${submitted.exitCode}`}`, {
          subject: this.name,
          hint: 'check --slurm-partition, --slurm-account, --slurm-gres and --slurm-arg against `sinfo`',
        })
      const unregister = onInterrupt(() => {
        spawnSync('scancel', [jobId], {stdio: 'ignore', timeout: 30_000})
      })
      try {
        return await this.await(job, jobId, stage, seconds)
      } finally {
        unregister()
      }
    } finally {
      await fs.rm(stage, {recursive: true, force: true})
    }
  }

  /** Poll status.json (the runner's) and squeue until the job is over; copy the artifacts back. */
  private async await(job: ProbeJob, jobId: string, stage: string, seconds: () => number): Promise<ProbeOutcome> {
    const statusPath = path.join(stage, 'status.json')
    let pause = 200
    let gone = 0
    // the runner enforces the timeout; this is the host's own bound for a runner that never
    // started or hangs: the run's timeout plus a minute, counted from when the job runs
    let runningSince: number | null = null
    for (;;) {
      const status = await readStatus(statusPath)
      if (status) {
        await copyArtifacts(path.join(stage, 'out'), job.outDir)
        const ended = {seconds: seconds(), stderrTail: status.stderr_tail}
        if (status.timed_out) return {kind: 'timed-out', limitSeconds: Math.round(job.timeoutMs / 1000), ...ended}
        if (status.terminated)
          return {kind: 'killed', signal: `${status.terminated} from Slurm (job ${jobId}: scancel, time limit or preemption)`, ...ended}
        if (status.signal === 'SIGKILL') return {kind: 'killed', signal: 'SIGKILL', ...ended}
        return {kind: 'exited', exitCode: status.exit ?? 1, ...ended, interpreter: this.inner.interpreter}
      }
      const state = await jobState(jobId)
      if (state?.state === 'RUNNING') runningSince ??= Date.now()
      if (runningSince !== null && Date.now() > runningSince + job.timeoutMs + 60_000) {
        spawnSync('scancel', [jobId], {stdio: 'ignore', timeout: 30_000})
        const err = await fs.readFile(path.join(stage, 'slurm.err'), 'utf8').catch(() => '')
        return {kind: 'timed-out', limitSeconds: Math.round(job.timeoutMs / 1000), seconds: seconds(), stderrTail: err.slice(-64 * 1024)}
      }
      if (state === null || !['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING', 'SUSPENDED'].includes(state.state)) {
        // the job left the queue without a status: give the shared folder a moment, then say why
        if (++gone > 10) {
          const err = await fs.readFile(path.join(stage, 'slurm.err'), 'utf8').catch(() => '')
          throw new ReproError(
            `Slurm job ${jobId} ended ${state?.state ?? 'and left the queue'}${state?.reason && state.reason !== 'None' ? ` (${state.reason})` : ''} without the runner's status${lastLine(err) ? `: ${lastLine(err)}` : ''}`,
            {
              subject: this.name,
              hint: 'see `scontrol show job` and the node’s slurmd log; --staging must be shared by the submit host and the nodes',
            },
          )
        }
      }
      await sleep(pause)
      pause = Math.min(1000, pause * 1.5)
    }
  }
}

async function readStatus(p: string): Promise<NodeStatus | null> {
  const text = await fs.readFile(p, 'utf8').catch(() => null)
  if (text === null || text.length > 1024 * 1024) return null
  try {
    const s = JSON.parse(text) as NodeStatus
    return typeof s.seconds === 'number' && typeof s.stderr_tail === 'string' ? s : null
  } catch {
    return null
  }
}

/** The job's state from squeue, else scontrol (a finished job stays there MinJobAge seconds); null when Slurm forgot it. */
async function jobState(jobId: string): Promise<{state: string; reason: string} | null> {
  const q = await spawnCapped('squeue', ['-h', '-j', jobId, '-o', '%T|%r'], {env: ENV, timeoutMs: 30_000}).catch(() => null)
  const line = q?.exitCode === 0 ? q.stdout.trim().split('\n')[0] : ''
  if (line) {
    const [state, reason] = line.split('|')
    return {state: state!, reason: reason ?? ''}
  }
  const c = await spawnCapped('scontrol', ['show', 'job', jobId], {env: ENV, timeoutMs: 30_000}).catch(() => null)
  const m = c?.exitCode === 0 ? /JobState=(\S+)\s+Reason=(\S+)/.exec(c.stdout) : null
  return m ? {state: m[1]!, reason: m[2]!} : null
}

/** The run's regular files (never links or folders) into the run directory; the readers check each one's cap. */
async function copyArtifacts(from: string, to: string): Promise<void> {
  await fs.mkdir(to, {recursive: true})
  const names = await fs.readdir(from).catch(() => [] as string[])
  for (const name of names) {
    const stat = await fs.lstat(path.join(from, name))
    if (stat.isFile()) await fs.copyFile(path.join(from, name), path.join(to, name))
  }
}

/** Default staging: a folder of this user under the temp dir (shared only on a single-node cluster). */
export function defaultStaging(): string {
  return path.join(os.tmpdir(), `repro-slurm-${process.getuid?.() ?? 'user'}`)
}
