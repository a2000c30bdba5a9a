// The docker / podman image target. No bind mounts: create a hardened container, copy the
// probe and inputs in, start it under a timeout, stream the artifacts out as a size-capped tar,
// and remove the container (and its volume) on success, failure, timeout and Ctrl-C alike.

import {spawnSync} from 'node:child_process'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {FILE_CAPS} from '../artifacts/run-dir.js'
import {onInterrupt} from './cleanup.js'
import {CONTAINER_ROOT, createArgs, type ContainerLimits} from './container-args.js'
import {containerLabels, ensureImage, type Engine, type ImageIdentity} from './engine.js'
import {probeRoot} from './probe-path.js'
import {extractTar, TarError} from './tar.js'
import {lastLine, type ProbeJob, type ProbeOutcome, type Target, type TargetIdentity} from './target.js'

/** What may come back out of a container, and how big each file may be. */
const OUT_CAPS: Record<string, number> = {
  'fingerprint.json': FILE_CAPS['fingerprint.json'],
  'run.json': FILE_CAPS['run.json'],
  'trace.json': FILE_CAPS['trace.json'],
  'tensors.safetensors': FILE_CAPS['tensors.safetensors'],
}
const OUT_TOTAL_CAP = Object.values(OUT_CAPS).reduce((a, b) => a + b, 0) + 1024 * 1024

export interface ContainerTargetOptions {
  engine: Engine
  image: string
  gpus: boolean
  limits: ContainerLimits
  /** interpreter inside the image */
  python?: string
}

export class ContainerTarget implements Target {
  readonly kind: 'docker' | 'podman'
  readonly name: string
  private image: ImageIdentity | null = null

  constructor(private readonly opts: ContainerTargetOptions) {
    this.kind = opts.engine.name
    this.name = `${opts.engine.name}:${opts.image}`
  }

  private async ensure(): Promise<ImageIdentity> {
    this.image ??= await ensureImage(this.opts.engine, this.opts.image, this.name)
    return this.image
  }

  async identify(): Promise<TargetIdentity> {
    const img = await this.ensure()
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
        gpus: this.opts.gpus,
        memory: this.opts.limits.memory,
        cpus: this.opts.limits.cpus,
      },
    }
  }

  async cacheIdentity(): Promise<Record<string, unknown>> {
    const img = await this.ensure()
    return {kind: this.kind, image_id: img.id, gpus: this.opts.gpus, python: this.opts.python ?? 'python3'}
  }

  async runProbeImpl(job: ProbeJob): Promise<ProbeOutcome> {
    const {engine} = this.opts
    await this.ensure()
    const args = createArgs({
      engine: engine.name,
      // Pin the exact image ID we inspected, so a tag moved mid-audit cannot swap it.
      image: this.image!.id,
      mode: job.mode,
      gpus: this.opts.gpus,
      limits: this.opts.limits,
      env: job.env,
      labels: containerLabels(),
      python: this.opts.python ?? 'python3',
    })
    const created = await engine.exec(args, 60_000)
    if (created.exitCode !== 0) {
      throw new ReproError(`cannot create a container from ${this.opts.image}: ${lastLine(created.stderrTail)}`, {
        subject: this.name,
        hint: gpuHint(this.opts.gpus, created.stderrTail) ?? 'check the engine with `docker info`, and the flags (--memory, --cpus)',
      })
    }
    const id = created.stdout.trim().split('\n').pop()!.trim()
    const unregister = onInterrupt(() => {
      spawnSync(engine.name, ['rm', '-f', '-v', id], {stdio: 'ignore', timeout: 30_000})
    })
    try {
      await this.copyIn(id, job)
      const started = await engine.exec(['start', '--attach', id], job.timeoutMs, 1024 * 1024)
      const ended = {seconds: started.seconds, stderrTail: started.stderrTail}
      if (started.timedOut) return {kind: 'timed-out', limitSeconds: Math.round(job.timeoutMs / 1000), ...ended}
      const state = await this.state(id)
      if (state.oomKilled || state.exitCode === 137) return {kind: 'out-of-memory', limit: this.opts.limits.memory, ...ended}
      // 127: the runtime could not exec the interpreter (the image has no python).
      if (state.exitCode === 127 || /executable file not found/i.test(started.stderrTail)) {
        return {kind: 'no-interpreter', interpreter: this.opts.python ?? 'python3', ...ended}
      }
      if (started.exitCode !== 0 && state.exitCode === 0) {
        throw new ReproError(`the engine could not start the container: ${lastLine(started.stderrTail)}`, {
          subject: this.name,
          hint: gpuHint(this.opts.gpus, started.stderrTail) ?? 'check the engine with `docker info`',
        })
      }
      await this.copyOut(id, job.outDir, state.exitCode === 0)
      return {kind: 'exited', exitCode: state.exitCode, ...ended}
    } finally {
      await engine.exec(['rm', '-f', '-v', id], 60_000).catch(() => undefined)
      unregister()
    }
  }

  private async copyIn(id: string, job: ProbeJob): Promise<void> {
    for (const [from, to] of [
      [probeRoot(), `${CONTAINER_ROOT}/probe`],
      [job.inputDir, `${CONTAINER_ROOT}/in`],
    ] as const) {
      const r = await this.opts.engine.exec(['cp', from, `${id}:${to}`], 120_000)
      if (r.exitCode !== 0)
        throw new ReproError(`cannot copy ${path.basename(from)} into the container: ${lastLine(r.stderrTail)}`, {
          subject: this.name,
          hint: 'check the engine with `docker info` and free disk space',
        })
    }
  }

  private async state(id: string): Promise<{exitCode: number; oomKilled: boolean}> {
    const r = await this.opts.engine.exec(['inspect', '--format', '{{.State.ExitCode}} {{.State.OOMKilled}}', id], 30_000)
    const [code, oom] = r.stdout.trim().split(/\s+/)
    return {exitCode: Number(code ?? 1), oomKilled: oom === 'true'}
  }

  /** Stream `out/` as tar and keep only allowlisted regular files under their caps. */
  private async copyOut(id: string, outDir: string, required: boolean): Promise<void> {
    const r = await this.opts.engine.exec(['cp', `${id}:${CONTAINER_ROOT}/out`, '-'], 300_000, OUT_TOTAL_CAP, true)
    if (r.exitCode !== 0 || !r.stdoutBytes) {
      if (!required) return
      throw new ReproError(`the probe left no artifacts: ${lastLine(r.stderrTail)}`, {
        subject: this.name,
        hint: 'see stderr.txt in the run directory',
      })
    }
    if (r.stdoutTruncated)
      throw new ReproError(`the artifacts are larger than ${OUT_TOTAL_CAP} bytes`, {
        subject: this.name,
        hint: 'the probe output is not trusted past its caps; store fewer steps',
      })
    let files: ReturnType<typeof extractTar>
    try {
      files = extractTar(r.stdoutBytes, OUT_CAPS)
    } catch (e) {
      if (e instanceof TarError)
        throw new ReproError(`the artifacts copied out are invalid: ${e.message}`, {
          subject: this.name,
          hint: 'the probe output is not trusted; rerun, or check the image',
        })
      throw e
    }
    await fs.mkdir(outDir, {recursive: true})
    for (const f of files) await fs.writeFile(path.join(outDir, f.name), f.data)
  }
}

function gpuHint(gpus: boolean, stderr: string): string | null {
  if (!gpus) return null
  if (/could not select device driver|nvidia|gpu|cdi/i.test(stderr))
    return 'the engine cannot give the container a GPU: install the NVIDIA Container Toolkit (docker) or generate a CDI spec (podman), or use --device cpu'
  return null
}
