// The container engine CLI (docker or podman): detection, the daemon health check, image
// identity, and the sweep of orphaned probe containers left by a crashed repro. The version and
// image questions go to the local docker daemon's socket where the CLI would (docker-api.ts).

import os from 'node:os'
import {timed} from '../env/timings.js'
import {ReproError} from '../errors.js'
import {type EngineName, removeArgs} from './container-args.js'
import {dockerApiGet, imagePath, localDockerSocket} from './docker-api.js'
import {parseImageConfig, type ImageConfig} from './image-launch.js'
import {spawnCapped, type SpawnOptions, type SpawnResult} from './process.js'
import {lastLine} from './target.js'

export const LABEL = 'repro'

export interface Engine {
  name: EngineName
  /** what the engine's server runs (from `version`), once detectEngine has asked */
  server?: {version: string; os: string; architecture: string}
  exec(args: string[], timeoutMs?: number, stdoutCap?: number, binaryStdout?: boolean, extra?: ExecExtra): Promise<SpawnResult>
}

/**
 * `input`: piped to the CLI's stdin (a tar for `cp -`); `stopAtCap`: only the first bytes
 * matter; `cwd`: where the CLI (and what it spawns: podman's conmon) runs.
 */
export type ExecExtra = Pick<SpawnOptions, 'input' | 'stopAtCap' | 'cwd'>

export function makeEngine(name: EngineName): Engine {
  return {
    name,
    async exec(args, timeoutMs = 120_000, stdoutCap = 8 * 1024 * 1024, binaryStdout = false, extra = {}) {
      // The engine CLI keeps the user's environment: DOCKER_HOST, DOCKER_CONTEXT, CONTAINER_HOST
      // and their TLS settings are how remote engines are reached.
      return timed('engine', `${name} ${args.slice(0, args[0] === 'image' ? 2 : 1).join(' ')}`, () =>
        spawnCapped(name, args, {env: process.env as Record<string, string>, timeoutMs, stdoutCap, binaryStdout, ...extra}),
      ).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') throw notInstalled(name)
        throw e
      })
    },
  }
}

function notInstalled(name: string): ReproError {
  return new ReproError(`the ${name} CLI is not installed`, {
    subject: name,
    hint: `install it (Debian: apt-get install ${name === 'docker' ? 'docker.io' : 'podman'}) or pick the other engine with --engine`,
  })
}

/** `--engine` or auto: docker first, then podman; the daemon must answer. */
export async function detectEngine(requested: EngineName | 'auto'): Promise<Engine> {
  if (requested !== 'auto') {
    const engine = makeEngine(requested)
    return (await versionViaApi(engine)) ?? answering(engine, await askVersion(engine))
  }
  // auto: the first CLI that starts at all (one `version` call each, not `--version` first)
  for (const name of ['docker', 'podman'] as const) {
    const engine = makeEngine(name)
    const viaApi = await versionViaApi(engine)
    if (viaApi) return viaApi
    const r = await askVersion(engine).catch(() => null)
    if (r) return answering(engine, r)
  }
  throw new ReproError('no container engine is installed (neither docker nor podman)', {
    subject: 'engine',
    hint: 'install one (Debian: apt-get install docker.io, or podman), or use --python targets',
  })
}

/**
 * The local docker daemon's version through its socket (docker-api.ts), or null: not docker, not
 * the local socket, or no clean answer (then the CLI asks, and words any error).
 */
async function versionViaApi(engine: Engine): Promise<Engine | null> {
  const socket = engine.name === 'docker' ? localDockerSocket() : null
  if (!socket) return null
  const a = await timed('engine', 'docker API: version', () => dockerApiGet(socket, '/version', 5_000))
  if (a?.status !== 200) return null
  try {
    const v = JSON.parse(a.body) as {Version?: unknown; Os?: unknown; Arch?: unknown}
    if (typeof v.Version !== 'string' || typeof v.Os !== 'string' || typeof v.Arch !== 'string' || !v.Version || !v.Os || !v.Arch)
      return null
    engine.server = {version: v.Version, os: v.Os, architecture: v.Arch}
    return engine
  } catch {
    return null
  }
}

function askVersion(engine: Engine): Promise<SpawnResult> {
  return engine.exec(['version', '--format', VERSION_FORMAT[engine.name]], 20_000)
}

function answering(engine: Engine, r: SpawnResult): Engine {
  const {name} = engine
  if (r.exitCode !== 0 || r.timedOut) {
    const why = lastLine(r.stderrTail) || (r.timedOut ? 'no answer in 20 s' : `exit ${r.exitCode}`)
    throw new ReproError(`the ${name} daemon is not answering (${why})`, {
      subject: name,
      hint:
        name === 'docker'
          ? 'start it (systemctl start docker, or run dockerd), or point DOCKER_HOST at a running engine'
          : 'start the podman service (systemctl --user start podman.socket) or set CONTAINER_HOST',
    })
  }
  engine.server = parseServerVersion(r.stdout)
  return engine
}

/** `version --format`: the server's version and platform (podman spells it OsArch). */
export const VERSION_FORMAT: Record<EngineName, string> = {
  docker: '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}',
  podman: '{{.Server.Version}} {{.Server.OsArch}}',
}

export function parseServerVersion(stdout: string): Engine['server'] {
  const [version, platform] = stdout.trim().split(/\s+/)
  const [os, architecture] = (platform ?? '').split('/')
  return version && os && architecture ? {version, os, architecture} : undefined
}

/** The engine CLI could not reach its daemon or service (down, or the connection to it broke). */
export function engineUnreachable(stderr: string): boolean {
  return /Cannot connect to the Docker daemon|error during connect|Is the docker daemon running|unable to connect to Podman|connection refused|ssh: connect to host|dial-stdio|broken pipe|EOF while reading|connection reset/i.test(
    stderr,
  )
}

export interface ImageIdentity {
  id: string
  repo_digests: string[]
  tags: string[]
  created: string | null
  architecture: string | null
  os: string | null
  labels: Record<string, string>
  /** how the image starts: entrypoint, cmd, env, user, working directory */
  config: ImageConfig
}

/** Image identity from `inspect`; the image's own strings are untrusted, so they are capped. */
export function parseImageInspect(stdout: string): ImageIdentity {
  const raw = JSON.parse(stdout) as unknown
  return imageIdentity((Array.isArray(raw) ? raw[0] : raw) as Record<string, unknown> | undefined)
}

function imageIdentity(first: Record<string, unknown> | undefined): ImageIdentity {
  if (!first || typeof first !== 'object') throw new Error('empty inspect output')
  const str = (v: unknown) => (typeof v === 'string' ? v.slice(0, 512) : null)
  const strs = (v: unknown) =>
    Array.isArray(v)
      ? v
          .filter((x): x is string => typeof x === 'string')
          .slice(0, 50)
          .map((x) => x.slice(0, 512))
      : []
  const config = (first['Config'] ?? {}) as Record<string, unknown>
  const labels: Record<string, string> = {}
  const rawLabels = (config['Labels'] ?? first['Labels'] ?? {}) as Record<string, unknown> | null
  for (const [k, v] of Object.entries(rawLabels ?? {}).slice(0, 100)) if (typeof v === 'string') labels[k.slice(0, 256)] = v.slice(0, 1024)
  return {
    // podman gives the bare hex digest; docker prefixes it
    id: ((id) => (id && /^[0-9a-f]{64}$/.test(id) ? `sha256:${id}` : id))(str(first['Id'])) ?? 'unknown',
    repo_digests: strs(first['RepoDigests']),
    tags: strs(first['RepoTags']),
    created: str(first['Created']),
    architecture: str(first['Architecture']),
    os: str(first['Os']),
    labels,
    config: parseImageConfig(config),
  }
}

export async function inspectImage(engine: Engine, image: string): Promise<ImageIdentity | null> {
  const r = await engine.exec(['image', 'inspect', image], 30_000)
  if (r.exitCode !== 0) return null
  return parseImageInspect(r.stdout)
}

/**
 * Several images in one `image inspect`, by the name each was given: only when every one is
 * present (the CLI answers them in order, so the count must match to pair them); otherwise, or
 * when the engine does not answer, none, and each target inspects its own image.
 */
export async function inspectImages(engine: Engine, images: string[]): Promise<Map<string, ImageIdentity>> {
  const viaApi = engine.name === 'docker' ? await inspectViaApi(images) : null
  if (viaApi) return viaApi
  const found = new Map<string, ImageIdentity>()
  try {
    const r = await engine.exec(['image', 'inspect', ...images], 30_000)
    if (r.exitCode !== 0 || r.stdoutTruncated) return found
    const raw = JSON.parse(r.stdout) as unknown
    if (!Array.isArray(raw) || raw.length !== images.length) return found
    for (const [i, image] of images.entries()) found.set(image, imageIdentity(raw[i] as Record<string, unknown>))
    return found
  } catch {
    return new Map()
  }
}

/**
 * inspectImages through the local docker socket: each image's own request, side by side. Every
 * one found: their identities; one missing: none (each target inspects, or pulls, its own);
 * anything else (no socket, an error, an odd name): null, and the CLI asks.
 */
async function inspectViaApi(images: string[]): Promise<Map<string, ImageIdentity> | null> {
  const socket = localDockerSocket()
  const paths = images.map(imagePath)
  if (!socket || paths.some((p) => p === null)) return null
  const answers = await Promise.all(paths.map((p) => timed('engine', 'docker API: image inspect', () => dockerApiGet(socket, p!, 30_000))))
  if (answers.some((a) => a === null || (a.status !== 200 && a.status !== 404))) return null
  if (answers.some((a) => a!.status === 404)) return new Map()
  try {
    return new Map(images.map((image, i) => [image, imageIdentity(JSON.parse(answers[i]!.body) as Record<string, unknown>)]))
  } catch {
    return null
  }
}

/** Make sure the image is there: present, or pulled (a pull may fail offline). */
export async function ensureImage(engine: Engine, image: string, subject: string): Promise<ImageIdentity> {
  const present = await inspectImage(engine, image)
  if (present) return present
  const pull = await engine.exec(['pull', '--quiet', image], 300_000)
  const pulled = pull.exitCode === 0 ? await inspectImage(engine, image) : null
  if (pulled) return pulled
  throw new ReproError(`image ${image} is not present and could not be pulled (${lastLine(pull.stderrTail) || `exit ${pull.exitCode}`})`, {
    subject,
    hint: 'check the name, build or load the image first (fixtures: bash fixtures/images/build.sh), or log in to its registry',
  })
}

/** `ps --format` for `ID PID HOST` of probe containers (docker's .Label is not podman's). */
export function ownerFormat(engine: EngineName): string {
  const label = (k: string) => (engine === 'docker' ? `{{.Label "${k}"}}` : `{{index .Labels "${k}"}}`)
  return `{{.ID}} ${label(`${LABEL}.pid`)} ${label(`${LABEL}.host`)}`
}

/** The labels every probe container carries, so a later run can find orphans. */
export function containerLabels(): Record<string, string> {
  return {
    [LABEL]: '1',
    [`${LABEL}.pid`]: String(process.pid),
    [`${LABEL}.host`]: os.hostname(),
    [`${LABEL}.started`]: new Date().toISOString(),
  }
}

/**
 * The labels of a container `repro prepare` stages: no owner yet (no repro process runs it). The
 * node runner that creates it adds its own pid and host (probe/node_runner.py), so an orphan
 * sweep sees a live owner while it runs and a dead one once it is gone.
 */
export function preparedLabels(): Record<string, string> {
  return {[LABEL]: '1', [`${LABEL}.prepared`]: '1', [`${LABEL}.started`]: new Date().toISOString()}
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * The engine, sweeping orphans (sweepOrphans) once, just before this process creates its first
 * container: a check whose runs all come from the run cache creates none, and skips the call.
 */
export function sweepBeforeFirstContainer(engine: Engine): Engine {
  let swept: Promise<number> | null = null
  return {
    ...engine,
    async exec(args, ...rest) {
      if (args[0] === 'create' || args[0] === 'run') {
        swept ??= sweepOrphans(engine)
        await swept
      }
      return engine.exec(args, ...rest)
    },
  }
}

/** Remove probe containers whose repro process (on this host) is gone. Returns how many. */
export async function sweepOrphans(engine: Engine): Promise<number> {
  const r = await engine.exec(['ps', '-a', '--filter', `label=${LABEL}`, '--format', ownerFormat(engine.name)], 30_000)
  if (r.exitCode !== 0) return 0
  const orphans = r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([id, pid, host]) => id && pid && host === os.hostname() && Number(pid) !== process.pid && !alive(Number(pid)))
    .map(([id]) => id!)
  if (orphans.length > 0) await engine.exec(removeArgs(engine.name, orphans), 60_000)
  return orphans.length
}
