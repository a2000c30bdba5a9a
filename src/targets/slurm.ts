// The Slurm executor (`--executor slurm`): a target's probe runs become Slurm array tasks (the
// runs of one stage of the audit go in one `sbatch --array`, slurm-array.ts). Each run is
// staged in a folder the submit host and the nodes share (`--staging`): the run's inputs and its
// run spec (`repro.prepared/2`); the job runs probe/node_runner.py (stdlib python, no node.js
// on the node), which writes status.json atomically; the host polls status.json and squeue,
// takes the artifacts back and turns the outcome into the same ProbeOutcome a local run gives.
// A python target's spec names the interpreter and the probe's argv; an image target's carries
// the container's `create` arguments from the same launch plan a local run uses, made from what
// an inspect task on a node said about the image (slurm-inspect.ts: no engine here) (the node's
// runner creates, feeds, drains and removes the container), and the node reports the image ID
// it ran: a target whose cells ran different images (a tag moved mid-audit) is an error.
// Compare, attribution and reports stay local. Ctrl-C cancels the arrays (scancel) before repro exits.

import {promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {ReproError} from '../errors.js'
import type {NodeStatus, RunSpec} from '../artifacts/prepared.js'
import type {ContainerLimits} from './container-args.js'
import type {ContainerTarget, LaunchPlan} from './container.js'
import {parseSize} from './image-launch.js'
import {awaitStatus, SlurmArrays, type SlurmOptions, TaskOverdue, withStage} from './slurm-array.js'
import {collectStagedRun, stageRun} from './node-run.js'
import {identifyPythonOnNode} from './slurm-inspect.js'
import type {PythonTarget} from './python.js'
import {lastLine, type ProbeJob, type ProbeOutcome, type Target, type TargetIdentity} from './target.js'

export type {SlurmOptions} from './slurm-array.js'

/**
 * What an image run asks Slurm for (pure): the container limits the user set, so the job holds
 * what its container may use (the engine's daemon, not the job, runs the container, so Slurm's
 * own limits never reach it); limits left at their defaults come from the allocation instead.
 */
export function containerResources(limits: Pick<ContainerLimits, 'memory' | 'cpus'>, given: {memory: boolean; cpus: boolean}): string[] {
  const out: string[] = []
  const bytes = given.memory ? parseSize(limits.memory) : null
  if (bytes !== null) out.push(`--mem=${Math.ceil(bytes / 1024 ** 2)}M`)
  const cpus = given.cpus ? Number(limits.cpus) : Number.NaN
  if (Number.isFinite(cpus) && cpus > 0) out.push(`--cpus-per-task=${Math.ceil(cpus)}`)
  return out
}

/**
 * A cell that ran a different image than the target's earlier cells (or than the image inspected
 * here, which the launch plan was made from): the error line, or null when it is the same (pure).
 */
export function imageDrift(
  target: string,
  reference: string,
  plan: {id: string; where: string},
  cells: {run: string; id: string}[],
  cell: {run: string; id: string},
): ReproError | null {
  const planned = plan.id
  const first = cells.find((c) => c.id === planned)
  if (cell.id === planned) return null
  const short = (id: string) => id.replace(/^(sha256:)?([0-9a-f]{12})[0-9a-f]*$/, '$1$2')
  const earlier = first
    ? `run ${first.run} ran ${short(planned)}`
    : `the launch plan was made from ${short(planned)} (image inspect on ${plan.where})`
  return new ReproError(`run ${cell.run} ran image ${short(cell.id)}, but ${earlier}: the tag ${reference} moved during the audit`, {
    subject: target,
    hint: `pin the image (--image NAME@sha256:DIGEST, or its ID) so every cell runs the same one, and keep ${reference} on the same image on every node until the audit ends; then rerun`,
  })
}

export class SlurmTarget implements Target {
  readonly kind: TargetIdentity['kind']
  readonly name: string
  /** runs go to Slurm in arrays: the audit hands it every run of a stage at once, and --jobs throttles the array */
  readonly batched = true
  private pythonIdentity: Promise<TargetIdentity> | null = null
  /** image targets: the image ID each cell ran, as the node's engine reported it */
  private readonly cells: {run: string; id: string}[] = []

  constructor(
    private readonly inner: PythonTarget | ContainerTarget,
    private readonly opts: SlurmOptions,
    /** the audit's arrays, shared by its Slurm targets so that their runs go in one array */
    private readonly arrays = new SlurmArrays(opts),
  ) {
    this.kind = inner.kind
    this.name = `slurm:${inner.kind === 'python' ? (inner as PythonTarget).interpreter : inner.name}`
  }

  async identify(): Promise<TargetIdentity> {
    // a python target's interpreter as a node has it (an identify task), not as this host may
    const inner = this.inner
    if (inner.kind === 'python')
      this.pythonIdentity ??= identifyPythonOnNode(this.arrays, this.opts, (inner as PythonTarget).interpreter, this.name)
    const id = this.pythonIdentity ? await this.pythonIdentity : await inner.identify()
    const ran = [...new Set(this.cells.map((c) => c.id))]
    const details: TargetIdentity['details'] = {...id.details, executor: 'slurm', ...(ran.length ? {image_id_ran: ran.join(' ')} : {})}
    // each run is a Slurm task of its own, with a container of its own on its node
    if (inner.kind !== 'python') details['containers'] = 'one per run (each a Slurm task)'
    return {...id, details}
  }

  cacheIdentity(): Promise<Record<string, unknown>> {
    return this.inner.cacheIdentity()
  }

  async runProbeImpl(job: ProbeJob): Promise<ProbeOutcome> {
    job.onStarted?.() // the cluster does the work from here
    const inner = this.inner
    try {
      if (inner.kind === 'python') return await this.runPython(job, inner as PythonTarget)
      const container = inner as ContainerTarget
      return await container.withInterpreters((plan, interpreter) => this.runImage(job, container, plan, interpreter))
    } catch (e) {
      if (e instanceof SlurmEnded) return e.outcome
      throw e
    }
  }

  private async runPython(job: ProbeJob, inner: PythonTarget): Promise<ProbeOutcome> {
    return withStage(this.opts.staging, 'run-', async (stage) => {
      const {spec} = await stageRun(stage, job, {kind: 'python', interpreter: inner.interpreter})
      const {status, seconds, where} = await this.submit(job, stage, spec, inner.interpreter, [])
      await collectStagedRun(stage, job.outDir, this.name, null)
      const ended = {seconds, stderrTail: status.stderr_tail, ...(where ? {where} : {})}
      if (status.timed_out) return {kind: 'timed-out', limitSeconds: Math.round(job.timeoutMs / 1000), ...ended}
      if (status.signal === 'SIGKILL') return {kind: 'killed', signal: 'SIGKILL', ...ended}
      return {kind: 'exited', exitCode: status.exit ?? 1, ...ended, interpreter: inner.interpreter}
    })
  }

  /** One container on a node, from the launch plan this host made (container.ts runs it locally). */
  private async runImage(job: ProbeJob, inner: ContainerTarget, plan: LaunchPlan, interpreter: string): Promise<ProbeOutcome> {
    return withStage(this.opts.staging, 'run-', async (stage) => {
      const given = this.opts.limitsGiven ?? {memory: true, cpus: true}
      const {spec, create: created} = await stageRun(stage, job, {
        kind: 'image',
        target: inner,
        plan,
        interpreter,
        limitsFromAllocation: {memory: !given.memory, cpus: !given.cpus},
      })
      const create = created!
      const {status, seconds, where} = await this.submit(job, stage, spec, 'python3', containerResources(create.limits, given))
      const run = path.basename(job.outDir)
      if (status.image_id) {
        const drift = imageDrift(this.name, create.image, await inner.imageId(), this.cells, {run, id: status.image_id})
        if (drift) throw drift
        this.cells.push({run, id: status.image_id})
      }
      const c = status.container
      const ended = {seconds, stderrTail: status.stderr_tail, ...(where ? {where} : {})}
      if (!c) throw new ReproError('the node’s runner wrote no container status', {subject: this.name, hint: 'rerun with --debug'})
      const logs = status.stderr_tail === c.error ? '' : status.stderr_tail
      const stop = (startError: string) => ({
        ...inner.stoppedOutcome(plan, interpreter, {exitCode: c.exit_code ?? 1, oomKilled: c.oom_killed, startError, logs}, seconds),
        ...(where ? {where} : {}),
      })
      switch (c.phase) {
        case 'create':
          throw inner.createFailed(c.error)
        case 'start':
          return stop(c.error)
        case 'stopped':
          return stop('')
        case 'timed-out':
          return {kind: 'timed-out', limitSeconds: Math.round(job.timeoutMs / 1000), ...ended}
        case 'copy-in':
          if (/no space left on device/i.test(c.error))
            return {kind: 'work-area-full', phase: 'inputs', cap: create.limits.workArea, ...ended}
          if (c.exit_code !== null) return stop('')
          throw new ReproError(`cannot copy the probe into the container: ${lastLine(c.error)}`, {
            subject: this.name,
            hint: `check the engine on the node with \`${create.engine} info\``,
          })
        case 'status': {
          const boot = c.boot!
          if (boot.exit !== 0 && (boot.full || /No space left on device|\[Errno 28\]/.test(status.stderr_tail)))
            return {kind: 'work-area-full', phase: 'probe', cap: create.limits.workArea, ...ended}
          inner.noteInterpreter(boot.python)
          await collectStagedRun(stage, job.outDir, this.name, {truncated: c.out_truncated, required: boot.exit === 0, stderrTail: c.error})
          return {kind: 'exited', exitCode: boot.exit, ...ended, interpreter: boot.python ?? interpreter}
        }
        default:
          throw new ReproError(`the node’s runner ended in an unknown phase (${String(c.phase).slice(0, 40)})`, {
            subject: this.name,
            hint: 'rerun with --debug',
          })
      }
    })
  }

  /**
   * Hand the staged run to the audit's arrays, wait for its status. `where`: the job and, for a
   * run that did not end cleanly, the state Slurm ended it in. A job Slurm ended early is a
   * `slurm-ended` outcome.
   */
  private async submit(
    job: ProbeJob,
    stage: string,
    spec: RunSpec,
    python: string,
    resources: string[],
  ): Promise<{status: NodeStatus; seconds: number; where: string | null}> {
    const t0 = Date.now()
    const seconds = () => (Date.now() - t0) / 1000
    const cell = await this.arrays.submit(this.name, {stage, python, order: job.outDir}, spec.timeout_seconds, resources)
    const {jobId} = cell
    try {
      const status = await awaitStatus(this.arrays, cell, stage, {subject: this.name, timeoutMs: job.timeoutMs, signal: job.signal}).catch(
        (e: unknown) => {
          if (!(e instanceof TaskOverdue)) throw e
          throw new SlurmEnded({
            kind: 'timed-out',
            limitSeconds: Math.round(job.timeoutMs / 1000),
            seconds: seconds(),
            stderrTail: e.stderrTail,
          })
        },
      )
      if (status.terminated) {
        const state = await this.arrays.finalState(jobId)
        throw new SlurmEnded({
          kind: 'slurm-ended',
          jobId,
          state: state?.state ?? status.terminated,
          reason: state?.reason ?? '',
          seconds: seconds(),
          stderrTail: status.stderr_tail,
        })
      }
      await fs.writeFile(
        path.join(job.outDir, 'slurm.json'),
        JSON.stringify(
          {
            schema: 'repro.slurm-run/1',
            job_id: jobId,
            array_id: cell.arrayId,
            node: status.node,
            image_id: status.image_id ?? null,
            allocation: status.allocation ?? null,
          },
          null,
          2,
        ),
      )
      const clean = status.container ? status.container.phase === 'status' && status.container.boot?.exit === 0 : status.exit === 0
      if (clean) return {status, seconds: seconds(), where: null}
      // a run that failed: name the job, its node and the state Slurm ended it in
      const state = await this.arrays.finalState(jobId)
      return {status, seconds: seconds(), where: `Slurm job ${jobId} on ${status.node}${state ? `: ${state.state}` : ''}`}
    } finally {
      cell.release()
    }
  }
}

/** An outcome decided while waiting (Slurm ended the job, the host's own bound): returned, not an error. */
class SlurmEnded extends Error {
  constructor(readonly outcome: ProbeOutcome) {
    super(outcome.kind)
  }
}

/** Default staging: a folder of this user under the temp dir (shared only on a single-node cluster). */
export function defaultStaging(): string {
  return path.join(os.tmpdir(), `repro-slurm-${process.getuid?.() ?? 'user'}`)
}
