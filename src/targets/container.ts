// The docker / podman image target. No bind mounts: create a hardened container whose work area
// is a size-bounded tmpfs volume, start it (its launcher waits for its inputs), copy the probe
// and the inputs in, wait for the launcher's status file, copy the artifacts out while the
// container still runs (the volume goes when it stops), and remove the container and its
// volume — on success, failure, timeout and Ctrl-C alike. Nothing is read from stdout.

import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {FILE_CAPS} from '../artifacts/run-dir.js'
import {onFinish, onInterrupt} from './cleanup.js'
import {type ContainerLimits, type CreateSpec, createArgs, type LaunchSpec, removeArgs} from './container-args.js'
import {containerLabels, engineUnreachable, ensureImage, type Engine, type ImageIdentity, LABEL} from './engine.js'
import {
  classifyEntrypoint,
  entrypointFileNeeded,
  type EntrypointMode,
  type EntrypointTreatment,
  executableCandidates,
  type ImageConfig,
  interpreterCandidates,
  parseBootStatus,
  platformMismatch,
  probeEnvironment,
  treatEntrypoint,
  WORK_AREA,
} from './image-launch.js'
import {readImageFileMemo, writeImageFileMemo} from './image-file-memo.js'
import {probeRoot} from './probe-path.js'
import type {SpawnResult} from './process.js'
import {extractTar, type FileHead, firstTarEntry, TarError, type TarInput, writeTar} from './tar.js'
import {lastLine, type ProbeJob, type ProbeOutcome, type Target, type TargetIdentity} from './target.js'

/**
 * `create` with an interrupt hook for the window before its ID is known: Ctrl-C kills the engine's
 * CLI, but the daemon may already be making the container (it was left running behind a Ctrl-C
 * that came right after it appeared). The hook removes this process's containers (its pid and
 * host labels), waits a moment for a create the daemon is finishing, and removes again.
 */
async function createOwned(engine: Engine, args: string[], timeoutMs: number): Promise<SpawnResult> {
  const unregister = onInterrupt(() => {
    removeOwnContainers(engine.name)
    spawnSync('sleep', ['1'], {stdio: 'ignore'})
    removeOwnContainers(engine.name)
  })
  try {
    return await engine.exec(args, timeoutMs)
  } finally {
    unregister()
  }
}

/** Remove (synchronously, for an interrupt hook) every container this process's labels name. */
function removeOwnContainers(engine: Engine['name']): void {
  const own = containerLabels()
  const listed = spawnSync(
    engine,
    ['ps', '-a', '-q', '--filter', `label=${LABEL}.pid=${own[`${LABEL}.pid`]}`, '--filter', `label=${LABEL}.host=${own[`${LABEL}.host`]}`],
    {encoding: 'utf8', timeout: 30_000},
  )
  const ids = (listed.stdout ?? '').split('\n').filter(Boolean)
  if (ids.length) spawnSync(engine, removeArgs(engine, ids), {stdio: 'ignore', timeout: 30_000})
}

/** What may come back out of a container, and how big each file may be. */
const OUT_CAPS: Record<string, number> = {
  'fingerprint.json': FILE_CAPS['fingerprint.json'],
  'run.json': FILE_CAPS['run.json'],
  'trace.json': FILE_CAPS['trace.json'],
  'tensors.safetensors': FILE_CAPS['tensors.safetensors'],
  // op replay (python -m repro_probe replay): its outputs' digests and values
  'replay.json': FILE_CAPS['replay.json'],
  'replay.safetensors': FILE_CAPS['replay.safetensors'],
  // a train run with trace.capture: the module's inputs at one step
  'capture.json': FILE_CAPS['capture.json'],
  'capture.safetensors': FILE_CAPS['capture.safetensors'],
}
export const OUT_TOTAL_CAP = Object.values(OUT_CAPS).reduce((a, b) => a + b, 0) + 1024 * 1024
const STATUS_CAP = 64 * 1024
const STDERR_CAP = 64 * 1024

/** How a local image target's runs use containers (its identity's `containers`, in the report). */
export const CONTAINERS_REUSED =
  "one per target (one per run running at once), kept for the target's next run with the same environment: each run a freshly started python, in an emptied work area and /tmp; removed after a run that did not end cleanly"

/** A started container whose supervisor takes this target's runs one by one (container_boot.py `serve`). */
interface Server {
  id: string
  /** the interpreter and environment it was created with: only runs with the same reuse it */
  key: string
  /** runs copied into it so far (the probe package goes in with the first) */
  runs: number
  /** when its last run was collected: its supervisor ends after lingering idle this long */
  idleSince: number
  lingerSeconds: number
  stopped: {result: SpawnResult | null}
  /** `podman start`'s working directory (conmon's `oom` file) */
  scratch: string
  unregister: () => void
}

export interface ContainerTargetOptions {
  engine: Engine
  image: string
  gpus: boolean
  limits: ContainerLimits
  /** `--python-in-image`: the interpreter inside the image (a name looked up on its PATH, or a path) */
  python?: string | null
  /** `--image-entrypoint`: keep the image's entrypoint, skip it, or decide from what it is */
  entrypoint?: EntrypointMode
  /** the image as already inspected (inspectImages, at the start of the audit); else inspected when first needed */
  identity?: ImageIdentity
  /** keep what the image holds at its entrypoint's path here, per image ID (image-file-memo.ts) */
  memoDir?: string
  /** inspect the image with the engine that runs it elsewhere (a Slurm node's), not with `engine` here */
  inspector?: ImageInspector
}

/**
 * Where an image target's image is inspected when its runs go elsewhere: the engine that will
 * run it (a Slurm node's, slurm-inspect.ts) says what the launch plan is made from, so this
 * host needs no engine.
 */
export interface ImageInspector {
  /** the image and that engine's server, and where it was asked (`node vm`) */
  inspect(): Promise<{identity: ImageIdentity; server: Engine['server']; where: string}>
  /** the first bytes and mode of the first of `paths` the image has */
  readFile(imageId: string, paths: string[]): Promise<FileHead | 'missing'>
}

/** How the probe starts in this image, decided once per target. */
export interface LaunchPlan {
  config: ImageConfig
  entrypoint: EntrypointTreatment
  candidates: string[]
}

let bootSource: string | null = null
function boot(): string {
  bootSource ??= readFileSync(path.join(probeRoot(), 'container_boot.py'), 'utf8')
  return bootSource
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export class ContainerTarget implements Target {
  readonly kind: 'docker' | 'podman'
  readonly name: string
  private image: ImageIdentity | null = null
  /** the engine server the image was inspected with, and where: this host's, or the inspector's */
  private server: Engine['server']
  private inspectedOn = 'this host'
  private plan: LaunchPlan | null = null
  /** the interpreter name that started, and the path it reported (known after a run) */
  private interpreter: string | null = null
  private interpreterPath: string | null = null
  /** containers idle between runs, by interpreter and environment */
  private idle = new Map<string, Server[]>()
  private closed = false
  private finishing: (() => void) | null = null

  constructor(private readonly opts: ContainerTargetOptions) {
    this.kind = opts.engine.name
    this.name = `${opts.engine.name}:${opts.image}`
    this.image = opts.identity ?? null
    this.server = opts.engine.server
  }

  private async ensure(): Promise<ImageIdentity> {
    if (this.image) return this.image
    const {inspector} = this.opts
    if (!inspector) {
      this.image = await ensureImage(this.opts.engine, this.opts.image, this.name)
      return this.image
    }
    const inspected = await inspector.inspect()
    this.server = inspected.server
    this.inspectedOn = inspected.where
    this.image = inspected.identity
    return this.image
  }

  async identify(): Promise<TargetIdentity> {
    const img = await this.ensure()
    const plan = await this.launchPlan()
    const cfg = img.config
    return {
      kind: this.kind,
      reference: this.opts.image,
      details: {
        image: this.opts.image,
        id: img.id,
        repo_digests: img.repo_digests.join(' ') || null,
        tags: img.tags.join(' ') || null,
        created: img.created,
        architecture: img.architecture,
        os: img.os,
        labels: Object.keys(img.labels).length ? JSON.stringify(img.labels) : null,
        engine: this.opts.engine.name,
        engine_version: this.server?.version ?? null,
        gpus: this.opts.gpus,
        memory: this.opts.limits.memory,
        cpus: this.opts.limits.cpus,
        work_area: this.opts.limits.workArea,
        user: cfg.user || 'root (no USER)',
        workdir: cfg.workdir || '/',
        entrypoint: cfg.entrypoint.length ? JSON.stringify(cfg.entrypoint).slice(0, 512) : null,
        entrypoint_treatment: plan.entrypoint.text.slice(0, 512),
        python:
          this.interpreterPath ?? this.interpreter ?? `${plan.candidates.join(' or ')} (resolved at run time; no run in this process)`,
        python_requested: this.opts.python ?? null,
        containers: CONTAINERS_REUSED,
      },
    }
  }

  async cacheIdentity(): Promise<Record<string, unknown>> {
    const img = await this.ensure()
    const plan = await this.launchPlan()
    return {
      kind: this.kind,
      image_id: img.id,
      gpus: this.opts.gpus,
      python: plan.candidates,
      entrypoint: plan.entrypoint.keep,
    }
  }

  /**
   * How a Kubernetes Pod starts the probe in this image (src/targets/k8s.ts): the image as
   * inspected, the launcher as a local run would start it (the first interpreter candidate: a Pod
   * cannot try the next one), and what repro adds to the image's environment.
   */
  async podLaunch(
    env: Record<string, string>,
    timeoutSeconds: number,
  ): Promise<{imageId: string; gpus: boolean; limits: ContainerLimits; env: Record<string, string>; launch: LaunchSpec}> {
    const img = await this.ensure()
    const plan = await this.launchPlan()
    return {
      imageId: img.id,
      gpus: this.opts.gpus,
      limits: this.opts.limits,
      env: probeEnvironment(plan.config.env, env),
      launch: {keepEntrypoint: plan.entrypoint.keep, interpreter: plan.candidates[0]!, boot: boot(), lingerSeconds: timeoutSeconds + 120},
    }
  }

  /**
   * The launch plan and its first interpreter, for a run staged to start elsewhere later
   * (`repro prepare`): like a Pod, it cannot try the next interpreter when that one is missing.
   */
  async firstLaunch(): Promise<{plan: LaunchPlan; interpreter: string}> {
    await this.ensure()
    const plan = await this.launchPlan()
    return {plan, interpreter: this.interpreter ?? plan.candidates[0]!}
  }

  private async launchPlan(): Promise<LaunchPlan> {
    this.plan ??= await this.makePlan()
    return this.plan
  }

  private async makePlan(): Promise<LaunchPlan> {
    const img = await this.ensure()
    const mismatch = platformMismatch(img, this.server ?? null)
    if (mismatch)
      throw new ReproError(mismatch, {
        subject: this.name,
        hint: `audit the image built for ${this.server!.os}/${this.server!.architecture} (pull it with --platform), or use an engine on the image's platform`,
      })
    const mode = this.opts.entrypoint ?? 'auto'
    const cfg = img.config
    const needed = mode === 'skip' ? null : entrypointFileNeeded(cfg.entrypoint)
    const file = needed ? await this.imageFile(img.id, executableCandidates(needed, cfg.env['PATH'], cfg.workdir)) : null
    const cls = classifyEntrypoint(cfg.entrypoint, file)
    const entrypoint = treatEntrypoint(mode, cls, cfg.entrypoint)
    if (entrypoint.problem === 'not-executable')
      throw new ReproError(`the image's entrypoint ${cls.detail} is not executable, so the image cannot start as built`, {
        subject: this.name,
        hint: 'make it executable in the image (RUN chmod +x …), or start the probe without it: --image-entrypoint skip',
      })
    if (entrypoint.problem === 'missing')
      throw new ReproError(`the image's entrypoint is ${cls.detail}`, {
        subject: this.name,
        hint: 'start the probe without it: --image-entrypoint skip (or auto)',
      })
    return {config: cfg, entrypoint, candidates: interpreterCandidates(this.opts.python)}
  }

  /** readImageFile through the memo (same image ID, same files), when there is a memo folder. */
  private async imageFile(imageId: string, paths: string[]): Promise<FileHead | 'missing'> {
    const dir = this.opts.memoDir
    // the engine's platform too: one multi-platform ID can hold another variant's files elsewhere
    const {server} = this
    const engine = `${this.opts.engine.name} ${server ? `${server.os}/${server.architecture}` : '?'}`
    const key = {engine, imageId, paths}
    const memo = dir ? await readImageFileMemo(dir, key) : null
    if (memo) return memo
    const file = this.opts.inspector ? await this.opts.inspector.readFile(imageId, paths) : await this.readImageFile(paths)
    if (dir) await writeImageFileMemo(dir, key, file)
    return file
  }

  /**
   * The first bytes and mode of the first of `paths` the image has, read with `cp` from a
   * container that is created but never started; 'missing' when it has none of them.
   */
  private async readImageFile(paths: string[]): Promise<FileHead | 'missing'> {
    const {engine} = this.opts
    const created = await createOwned(
      engine,
      ['create', '--network', 'none', ...labelArgs(), '--entrypoint', '/nonexistent/repro-inspect', this.image!.id],
      60_000,
    )
    if (created.exitCode !== 0) throw this.engineError('cannot create a container to inspect the image', created)
    const id = created.stdout.trim().split('\n').pop()!.trim()
    const unregister = onInterrupt(() => spawnSync(engine.name, removeArgs(engine.name, [id]), {stdio: 'ignore', timeout: 30_000}))
    try {
      for (const p of paths) {
        // docker cp copies a symlink as a link unless -L; podman cp always follows it.
        const follow = engine.name === 'docker' ? ['-L'] : []
        const r = await engine.exec(['cp', ...follow, `${id}:${p}`, '-'], 30_000, 8192, true, {stopAtCap: true})
        const head = r.stdoutBytes ? firstTarEntry(r.stdoutBytes) : null
        if (head) return head
        if (engineUnreachable(r.stderrTail)) throw this.engineError('the engine stopped answering', r)
      }
      return 'missing'
    } finally {
      await engine.exec(removeArgs(engine.name, [id]), 60_000).catch(() => undefined)
      unregister()
    }
  }

  async runProbeImpl(job: ProbeJob): Promise<ProbeOutcome> {
    job.onStarted?.() // the engine does the work from here: nothing of node's holds it back
    return this.withInterpreters((plan, interpreter) => this.runOnce(job, plan, interpreter))
  }

  /**
   * Run the probe (`once`: one container, here or on a Slurm node) with each interpreter the
   * launch plan names until one starts; later runs use that one directly.
   */
  async withInterpreters(once: (plan: LaunchPlan, interpreter: string) => Promise<ProbeOutcome>): Promise<ProbeOutcome> {
    await this.ensure()
    const plan = await this.launchPlan()
    const candidates = this.interpreter ? [this.interpreter] : plan.candidates
    let notFound: ProbeOutcome | null = null
    for (const interpreter of candidates) {
      const outcome = await once(plan, interpreter)
      if (outcome.kind !== 'no-interpreter') {
        this.interpreter = interpreter
        return outcome
      }
      notFound = outcome
    }
    return {
      ...(notFound as Extract<ProbeOutcome, {kind: 'no-interpreter'}>),
      interpreter: candidates[0]!,
      tried: candidates,
      searchPath: plan.entrypoint.keep ? undefined : (plan.config.env['PATH'] ?? null),
      entrypoint: plan.entrypoint.keep ? plan.config.entrypoint[0]! : null,
    }
  }

  /**
   * The probe's container for one run. Local runs pin the exact image ID inspected, so a tag
   * moved mid-audit cannot swap it; a Slurm node runs the reference as given (its own image
   * under that name) and reports the ID it ran.
   */
  createSpec(job: ProbeJob, plan: LaunchPlan, interpreter: string, pin: boolean): CreateSpec {
    const limitSeconds = Math.round(job.timeoutMs / 1000)
    return {
      engine: this.opts.engine.name,
      image: pin ? this.image!.id : this.opts.image,
      mode: job.mode,
      gpus: this.opts.gpus,
      limits: this.opts.limits,
      env: probeEnvironment(plan.config.env, job.env),
      labels: containerLabels(),
      launch: {keepEntrypoint: plan.entrypoint.keep, interpreter, boot: boot(), lingerSeconds: limitSeconds + 120},
    }
  }

  /** The engine refused to create the container. */
  createFailed(stderrTail: string): ReproError {
    return new ReproError(`cannot create a container from ${this.opts.image}: ${lastLine(stderrTail)}`, {
      subject: this.name,
      hint:
        gpuHint(this.opts.gpus, stderrTail) ??
        rlimitHint(stderrTail) ??
        `check the engine with \`${this.opts.engine.name} info\`, and the flags (--memory, --cpus, --work-area)`,
    })
  }

  /** The image ID this target was inspected as (the launch plan's image), and where (`this host`, `node vm`). */
  async imageId(): Promise<{id: string; where: string}> {
    const {id} = await this.ensure()
    return {id, where: this.inspectedOn}
  }

  /** The interpreter path the launcher reported (a run elsewhere, e.g. on a Slurm node). */
  noteInterpreter(path: string | null): void {
    if (path) this.interpreterPath = path
  }

  /**
   * One run in one of this target's containers: reuse one left idle by an earlier run made with
   * the same interpreter and environment, or create and start one (its supervisor,
   * container_boot.py `serve`, takes runs one by one, each a fresh python process). Copy the
   * job in, wait for its status.json, copy its artifacts out, and hand the container back for
   * the next run — only when the run ended cleanly; after anything else (a timeout, an OOM kill,
   * a full work area, a crash, Ctrl-C) it is removed with its volume. A reused container whose
   * work area cannot take the inputs is removed and the run tried once in a fresh one.
   */
  private async runOnce(job: ProbeJob, plan: LaunchPlan, interpreter: string): Promise<ProbeOutcome> {
    const spec = this.createSpec(job, plan, interpreter, true)
    const key = JSON.stringify([interpreter, spec.env])
    const reused = this.takeIdle(key)
    const first = await this.runIn(reused, spec, job, plan, interpreter)
    if (first !== 'retry') return first
    return (await this.runIn(null, spec, job, plan, interpreter)) as ProbeOutcome
  }

  private async runIn(
    reused: Server | null,
    spec: CreateSpec,
    job: ProbeJob,
    plan: LaunchPlan,
    interpreter: string,
  ): Promise<ProbeOutcome | 'retry'> {
    const {engine, limits} = this.opts
    const t0 = Date.now()
    const seconds = () => (Date.now() - t0) / 1000
    const limitSeconds = Math.round(job.timeoutMs / 1000)
    const started = reused ?? (await this.startServer(spec, plan, interpreter, seconds))
    if (!('id' in started)) return started
    const server = started
    const {id} = server
    const oomKilled = () => existsSync(path.join(server.scratch, 'oom'))
    let keep = false
    try {
      const copied = await engine.exec(['cp', '-', `${id}:${WORK_AREA}`], 300_000, undefined, false, {
        input: await inputsTar(job, {probe: server.runs === 0, next: true, seq: server.runs + 1}),
      })
      server.runs++
      if (copied.exitCode !== 0) {
        if (/no space left on device/i.test(copied.stderrTail)) {
          if (reused) return 'retry'
          return {kind: 'work-area-full', phase: 'inputs', cap: limits.workArea, seconds: seconds(), stderrTail: copied.stderrTail}
        }
        if (engineUnreachable(copied.stderrTail)) return this.lost(copied, seconds)
        if (server.stopped.result || (await this.isStopped(id))) return await this.ended(id, plan, interpreter, '', seconds, oomKilled)
        throw new ReproError(`cannot copy the probe into the container: ${lastLine(copied.stderrTail)}`, {
          subject: this.name,
          hint: `check the engine with \`${engine.name} info\``,
        })
      }
      const deadline = t0 + job.timeoutMs
      let pause = 50
      for (;;) {
        if (server.stopped.result) return await this.ended(id, plan, interpreter, '', seconds, oomKilled)
        if (Date.now() > deadline)
          return {kind: 'timed-out', limitSeconds, seconds: seconds(), stderrTail: await this.logs(id, reused ? t0 : undefined)}
        const r = await engine.exec(['cp', `${id}:${WORK_AREA}/status.json`, '-'], 30_000, STATUS_CAP + 4096, true)
        const text = r.exitCode === 0 && r.stdoutBytes ? fileText(r.stdoutBytes, 'status.json', STATUS_CAP) : null
        const status = text === null ? null : parseBootStatus(text)
        if (status) {
          const stderrTail = await this.runStderr(id)
          this.interpreterPath = status.python
          const ended = {seconds: seconds(), stderrTail}
          if (status.oom) return {kind: 'out-of-memory', limit: limits.memory, ...ended}
          if (status.exit !== 0 && (status.full || /No space left on device|\[Errno 28\]/.test(stderrTail)))
            return {kind: 'work-area-full', phase: 'probe', cap: limits.workArea, ...ended}
          if (status.signal === 9) return {kind: 'killed', signal: 'SIGKILL', ...ended}
          await this.copyOut(id, job.outDir, status.exit === 0)
          if (status.exit === 0) {
            // the supervisor empties the work area, /tmp and the scratch folder for the next run
            const done = await engine.exec(['cp', '-', `${id}:${WORK_AREA}`], 30_000, undefined, false, {
              input: writeTar([{name: `jobs/${server.runs}/collected`, data: Buffer.alloc(0), mode: 0o666}]),
            })
            keep = done.exitCode === 0
          }
          return {kind: 'exited', exitCode: status.exit, interpreter: status.python ?? interpreter, ...ended}
        }
        if (r.exitCode !== 0 && engineUnreachable(r.stderrTail)) return this.lost(r, seconds)
        await sleep(Math.max(0, Math.min(pause, deadline - Date.now())))
        pause = Math.min(500, pause * 1.5)
      }
    } finally {
      if (keep && !this.closed) this.giveBack(server)
      else await this.remove(server)
    }
  }

  /**
   * Create and start a container whose supervisor waits for runs. An outcome instead when it
   * cannot start (no such interpreter, a kept entrypoint that fails, …): the container is gone.
   */
  private async startServer(
    spec: CreateSpec,
    plan: LaunchPlan,
    interpreter: string,
    seconds: () => number,
  ): Promise<Server | ProbeOutcome> {
    const {engine} = this.opts
    const created = await createOwned(engine, createArgs({...spec, mode: 'serve'}), 60_000)
    if (created.exitCode !== 0) throw this.createFailed(created.stderrTail)
    const id = created.stdout.trim().split('\n').pop()!.trim()
    const unregister = onInterrupt(() => {
      spawnSync(engine.name, removeArgs(engine.name, [id]), {stdio: 'ignore', timeout: 30_000})
    })
    this.finishing ??= onFinish(() => this.close())
    // podman's conmon (started by `podman start`) writes a file named `oom` into its working
    // directory when the container is OOM-killed: give it a directory of this container's own,
    // which is also how an OOM kill is recognised where podman does not set OOMKilled (cgroup v1).
    const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'repro-engine-'))
    const server: Server = {
      id,
      key: JSON.stringify([interpreter, spec.env]),
      runs: 0,
      idleSince: Date.now(),
      lingerSeconds: spec.launch.lingerSeconds,
      stopped: {result: null},
      scratch,
      unregister,
    }
    const started = await engine.exec(['start', id], 60_000, undefined, false, {cwd: scratch})
    if (started.exitCode !== 0) {
      try {
        return await this.ended(id, plan, interpreter, started.stderrTail, seconds, () => existsSync(path.join(scratch, 'oom')))
      } finally {
        await this.remove(server)
      }
    }
    // `wait` returns when the container stops: an early end (no interpreter, OOM, a crash of
    // the supervisor) is noticed without polling the engine for its state.
    void engine.exec(['wait', id], 7 * 24 * 3600_000).then(
      (r) => {
        server.stopped.result = r
      },
      () => undefined,
    )
    return server
  }

  /**
   * An idle container made with `key` that is still running, if this target has one — not one
   * whose supervisor may be about to end its idle linger.
   */
  private takeIdle(key: string): Server | null {
    const list = this.idle.get(key) ?? []
    while (list.length) {
      const s = list.pop()!
      if (!s.stopped.result && Date.now() - s.idleSince < (s.lingerSeconds - 60) * 1000) return s
      void this.remove(s)
    }
    return null
  }

  private giveBack(server: Server): void {
    server.idleSince = Date.now()
    const list = this.idle.get(server.key) ?? []
    list.push(server)
    this.idle.set(server.key, list)
  }

  private async remove(server: Server): Promise<void> {
    await this.opts.engine.exec(removeArgs(this.opts.engine.name, [server.id]), 60_000).catch(() => undefined)
    server.unregister()
    await fs.rm(server.scratch, {recursive: true, force: true})
  }

  /** Remove the containers kept for later runs (the command is done: ReproCommand.finally). */
  async close(): Promise<void> {
    this.closed = true
    const all = [...this.idle.values()].flat()
    this.idle.clear()
    if (!all.length) return
    const {engine} = this.opts
    const ids = all.map((s) => s.id)
    await engine.exec(removeArgs(engine.name, ids), 60_000).catch(() => undefined)
    for (const s of all) {
      s.unregister()
      await fs.rm(s.scratch, {recursive: true, force: true})
    }
  }

  /** The run's stderr: its last 64 KiB, kept by the supervisor (the container's own log holds only what came before the run). */
  private async runStderr(id: string): Promise<string> {
    const r = await this.opts.engine.exec(['cp', `${id}:${WORK_AREA}/stderr.tail`, '-'], 30_000, STDERR_CAP + 4096, true)
    const text = r.exitCode === 0 && r.stdoutBytes ? fileText(r.stdoutBytes, 'stderr.tail', STDERR_CAP) : null
    return text ?? (await this.logs(id))
  }

  /** The container stopped (or never started) before the launcher wrote its status: why. */
  private async ended(
    id: string,
    plan: LaunchPlan,
    interpreter: string,
    startError: string,
    seconds: () => number,
    oomKilled: () => boolean,
  ): Promise<ProbeOutcome> {
    const r = await this.opts.engine.exec(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', id], 30_000)
    if (r.exitCode !== 0 && engineUnreachable(r.stderrTail)) return this.lost(r, seconds)
    const [code, oom] = r.stdout.trim().split(/\s+/)
    return this.stoppedOutcome(
      plan,
      interpreter,
      {exitCode: Number(code ?? 1) || 0, oomKilled: oom === 'true' || oomKilled(), startError, logs: await this.logs(id)},
      seconds(),
    )
  }

  /**
   * Why a container stopped (or never started) before its launcher wrote a status, from what
   * the engine said: its exit code, OOM flag, the `start` error and its stderr. Shared by local
   * runs and a Slurm node's (whose runner reports the same facts).
   */
  stoppedOutcome(
    plan: LaunchPlan,
    interpreter: string,
    facts: {exitCode: number; oomKilled: boolean; startError: string; logs: string},
    seconds: number,
  ): ProbeOutcome {
    const {engine, limits} = this.opts
    const {exitCode, startError} = facts
    const stderrTail = `${startError}${facts.logs}`
    const ended = {seconds, stderrTail}
    if (/exec format error/i.test(stderrTail))
      throw new ReproError(
        `the engine cannot run the image's programs (exec format error): it is built for ${this.image!.os}/${this.image!.architecture}`,
        {subject: this.name, hint: 'audit the image built for the engine’s platform, or use an engine on the image’s platform'},
      )
    // podman 4.x on cgroup v1 never sets OOMKilled; its conmon leaves an `oom` file instead
    if (facts.oomKilled) return {kind: 'out-of-memory', limit: limits.memory, ...ended}
    if (exitCode === 137) return {kind: 'killed', signal: 'SIGKILL', ...ended}
    const keep = plan.entrypoint.keep
    if (startError && /rlimit/i.test(startError))
      throw new ReproError(`the engine could not start the container: ${lastLine(startError)}`, {
        subject: this.name,
        hint: rlimitHint(startError)!,
      })
    const notFound = /executable file not found|not found in \$PATH|exec: "[^"]*": stat [^:]*: no such file or directory|: not found/i
    if (exitCode === 127 || (startError && notFound.test(startError))) return {kind: 'no-interpreter', interpreter, ...ended}
    if (startError && /exec: "[^"]*": permission denied/i.test(startError))
      return keep
        ? {kind: 'entrypoint-failed', entrypoint: plan.config.entrypoint[0]!, exitCode: exitCode || 126, ...ended}
        : {kind: 'no-interpreter', interpreter, ...ended}
    if (startError) {
      throw new ReproError(`the engine could not start the container: ${lastLine(startError)}`, {
        subject: this.name,
        hint: gpuHint(this.opts.gpus, startError) ?? rlimitHint(startError) ?? `check the engine with \`${engine.name} info\``,
      })
    }
    // the work area ran full and took the boot process down before it could write its status
    if (exitCode !== 0 && /No space left on device|\[Errno 28\]/.test(stderrTail))
      return {kind: 'work-area-full', phase: 'probe', cap: limits.workArea, ...ended}
    // A kept entrypoint that exits without python ever printing a traceback failed on its own.
    if (keep && exitCode !== 0 && !/Traceback|repro_probe|python/i.test(stderrTail))
      return {kind: 'entrypoint-failed', entrypoint: plan.config.entrypoint[0]!, exitCode, ...ended}
    return {kind: 'exited', exitCode: exitCode || 1, ...ended}
  }

  private lost(r: SpawnResult, seconds: () => number): ProbeOutcome {
    return {
      kind: 'engine-lost',
      engine: this.opts.engine.name,
      detail: lastLine(r.stderrTail),
      seconds: seconds(),
      stderrTail: r.stderrTail,
    }
  }

  private async isStopped(id: string): Promise<boolean> {
    const r = await this.opts.engine.exec(['inspect', '--format', '{{.State.Running}}', id], 30_000)
    return r.exitCode === 0 && r.stdout.trim() === 'false'
  }

  /** The container's stderr (its stdout is the image's business: banners, prints); since `since` (ms): one run's of a reused container. */
  private async logs(id: string, since?: number): Promise<string> {
    const from = since === undefined ? [] : ['--since', new Date(since - 1000).toISOString()]
    const r = await this.opts.engine.exec(['logs', ...from, id], 30_000, 64 * 1024)
    return r.stderrTail
  }

  /** Stream `out/` as tar and keep only allowlisted regular files under their caps. */
  private async copyOut(id: string, outDir: string, required: boolean): Promise<void> {
    const r = await this.opts.engine.exec(['cp', `${id}:${WORK_AREA}/out`, '-'], 300_000, OUT_TOTAL_CAP, true)
    const ok = r.exitCode === 0 && r.stdoutBytes ? r.stdoutBytes : null
    await this.artifactsFromTar(ok, Boolean(r.stdoutTruncated), outDir, required, r.stderrTail)
  }

  /** artifactsFromTar, its errors naming this target. */
  artifactsFromTar(tar: Buffer | null, truncated: boolean, outDir: string, required: boolean, stderrTail: string): Promise<void> {
    return artifactsFromTar(tar, truncated, outDir, required, stderrTail, this.name)
  }

  private engineError(what: string, r: SpawnResult): ReproError {
    return new ReproError(`${what}: ${lastLine(r.stderrTail)}`, {
      subject: this.name,
      hint: `check the engine with \`${this.opts.engine.name} info\``,
    })
  }
}

/**
 * `out/` as the engine's `cp` streamed it (here, or saved by probe/node_runner.py: a Slurm
 * job, `repro prepare`'s run.sh): only allowlisted regular files under their caps reach the run directory. null: no copy.
 */
export async function artifactsFromTar(
  tar: Buffer | null,
  truncated: boolean,
  outDir: string,
  required: boolean,
  stderrTail: string,
  subject: string,
): Promise<void> {
  if (!tar) {
    if (!required) return
    throw new ReproError(`the probe left no artifacts: ${lastLine(stderrTail)}`, {
      subject,
      hint: 'see stderr.txt in the run directory',
    })
  }
  if (truncated)
    throw new ReproError(`the artifacts are larger than ${OUT_TOTAL_CAP} bytes`, {
      subject,
      hint: 'the probe output is not trusted past its caps; store fewer steps',
    })
  let files: ReturnType<typeof extractTar>
  try {
    files = extractTar(tar, OUT_CAPS)
  } catch (e) {
    if (e instanceof TarError)
      throw new ReproError(`the artifacts copied out are invalid: ${e.message}`, {
        subject,
        hint: 'the probe output is not trusted; rerun, or check the image',
      })
    throw e
  }
  await fs.mkdir(outDir, {recursive: true})
  const written: string[] = []
  try {
    for (const f of files) {
      const to = path.join(outDir, f.name)
      written.push(to)
      await fs.writeFile(to, f.data)
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw e
    // A half-written artifact must not be taken for a run: remove what this copy wrote.
    await Promise.all(written.map((f) => fs.rm(f, {force: true})))
    throw new ReproError(`no space left on the host to copy the artifacts out into ${outDir}`, {
      subject,
      hint: 'free disk space there, or write the run somewhere else (--out)',
    })
  }
}

export function labelArgs(): string[] {
  return Object.entries(containerLabels()).flatMap(([k, v]) => ['--label', `${k}=${v}`])
}

/** One file (status.json, stderr.tail) out of the tar stream `cp …/FILE -` gives, under its cap. */
function fileText(tar: Buffer, name: string, cap: number): string | null {
  try {
    const [f] = extractTar(tar, {[name]: cap})
    return f ? f.data.toString('utf8') : null
  } catch {
    return null
  }
}

/**
 * One tar for `cp - CONTAINER:/repro` (in a Pod: untarred through `kubectl exec`, k8s.ts): the
 * probe package, the inputs, then `ready` — last, so the launcher starts the probe only once
 * everything before it is in place. For a supervisor (`next`): the probe package only with its
 * first run, and the run's inputs, `job.json` and `ready` under jobs/SEQ/ (SEQ: the runs the
 * container has been given, this one included), taken once the run before has been collected.
 */
export async function inputsTar(
  job: Pick<ProbeJob, 'inputDir'> & Partial<Pick<ProbeJob, 'mode'>>,
  opts: {probe: boolean; next: boolean; seq?: number} = {probe: true, next: false},
): Promise<Buffer> {
  const entries: TarInput[] = []
  const walk = async (dir: string, rel: string): Promise<void> => {
    entries.push({name: rel})
    for (const e of (await fs.readdir(dir, {withFileTypes: true})).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name === '__pycache__') continue
      const from = path.join(dir, e.name)
      if (e.isDirectory()) await walk(from, `${rel}/${e.name}`)
      else if (e.isFile()) entries.push({name: `${rel}/${e.name}`, data: await fs.readFile(from)})
    }
  }
  if (opts.probe) {
    entries.push({name: 'probe'})
    await walk(path.join(probeRoot(), 'repro_probe'), 'probe/repro_probe')
  }
  if (!opts.next) {
    await walk(job.inputDir, 'in')
    entries.push({name: 'ready', data: Buffer.alloc(0)})
    return writeTar(entries)
  }
  // what the engine writes is root's: world-writable, so that the supervisor, as whatever user
  // the image runs as, can link the inputs into its own in/ and remove them after the run
  const from = entries.length
  const at = `jobs/${opts.seq}`
  entries.push({name: 'jobs'}, {name: at})
  await walk(job.inputDir, `${at}/in`)
  entries.push({name: `${at}/job.json`, data: Buffer.from(JSON.stringify({mode: job.mode}))})
  entries.push({name: `${at}/ready`, data: Buffer.alloc(0)})
  for (const e of entries.slice(from)) e.mode = e.data ? 0o666 : 0o777
  return writeTar(entries)
}

function gpuHint(gpus: boolean, stderr: string): string | null {
  if (!gpus) return null
  if (/could not select device driver|nvidia|gpu|cdi/i.test(stderr))
    return 'the engine cannot give the container a GPU: install the NVIDIA Container Toolkit (docker) or generate a CDI spec (podman), or use --device cpu'
  return null
}

function rlimitHint(stderr: string): string | null {
  if (!/rlimit/i.test(stderr)) return null
  return 'the engine may not raise rlimits on this host (no CAP_SYS_RESOURCE): lower them in containers.conf (default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]); see `repro doctor`'
}
