// How the probe is launched in an image, decided from what `image inspect` says (and, for an
// entrypoint, the first bytes of its file): keep or skip the entrypoint, which interpreter to
// ask for, and which environment to add to the image's own. Pure: container.ts does the I/O.

import type {FileHead} from './tar.js'

export const ENTRYPOINT_MODES = ['auto', 'keep', 'skip'] as const
export type EntrypointMode = (typeof ENTRYPOINT_MODES)[number]

/** The parts of an image's config that decide how the probe starts (untrusted strings, capped). */
export interface ImageConfig {
  entrypoint: string[]
  cmd: string[]
  env: Record<string, string>
  /** `USER` as written (`1000:1000`, `trainer`); '' means root */
  user: string
  /** `WORKDIR`; '' means / */
  workdir: string
}

export function parseImageConfig(config: Record<string, unknown> | null | undefined): ImageConfig {
  const c = config ?? {}
  const strs = (v: unknown, cap: number) =>
    Array.isArray(v)
      ? v
          .filter((x): x is string => typeof x === 'string')
          .slice(0, 64)
          .map((x) => x.slice(0, cap))
      : []
  const env: Record<string, string> = {}
  for (const kv of strs(c['Env'], 8192).slice(0, 64)) {
    const eq = kv.indexOf('=')
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  const str = (v: unknown) => (typeof v === 'string' ? v.slice(0, 512) : '')
  return {entrypoint: strs(c['Entrypoint'], 8192), cmd: strs(c['Cmd'], 8192), env, user: str(c['User']), workdir: str(c['WorkingDir'])}
}

/** What an entrypoint is, as far as starting the probe through it goes. */
export type EntrypointKind =
  | 'none'
  | 'shell-script'
  | 'shell-command'
  | 'init'
  | 'activator'
  | 'interpreter'
  | 'application'
  | 'ignores-arguments'
  | 'missing'
  | 'not-executable'

export interface EntrypointClass {
  kind: EntrypointKind
  /** in words, for the report: "a shell script (#!/bin/sh)" */
  detail: string
}

const SHELLS = new Set(['sh', 'bash', 'dash', 'ash', 'zsh', 'ksh', 'mksh'])
const INITS = new Set(['tini', 'tini-static', 'dumb-init', 'catatonit'])
const ENV_MANAGERS = new Set(['conda', 'mamba', 'micromamba', 'pixi'])
const PYTHON = /^(python|pypy|ipython)[0-9.]*$/

const basename = (p: string) => p.slice(p.lastIndexOf('/') + 1)

/** Kinds that run their arguments, so the probe can start through them. */
const EXECS_ARGUMENTS = new Set<EntrypointKind>(['shell-script', 'shell-command', 'init', 'activator'])

/** The entrypoint's file whose first bytes decide what it is, or null when its arguments decide. */
export function entrypointFileNeeded(entrypoint: string[]): string | null {
  const r = classify(entrypoint, undefined)
  return 'needs' in r ? r.needs : null
}

/** Where a (possibly bare) executable name may live: itself with a `/`, else each `PATH` directory. */
export function executableCandidates(name: string, pathEnv: string | undefined, workdir: string): string[] {
  if (name.startsWith('/')) return [name]
  if (name.includes('/')) return [`${(workdir || '/').replace(/\/$/, '')}/${name}`]
  const dirs = (pathEnv ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':').filter((d) => d.startsWith('/'))
  return [...new Set(dirs)].slice(0, 16).map((d) => `${d.replace(/\/$/, '')}/${name}`)
}

/**
 * Classify an entrypoint from its argument list and, when that is not enough, the first bytes
 * of the file named by entrypointFileNeeded (`'missing'` when the image does not have it).
 */
export function classifyEntrypoint(entrypoint: string[], file: FileHead | 'missing' | null): EntrypointClass {
  const r = classify(entrypoint, file ?? 'missing')
  return 'needs' in r ? {kind: 'missing', detail: `${r.needs}, which the image does not have`} : r
}

type Classified = EntrypointClass | {needs: string}

function classify(argv: string[], file: FileHead | 'missing' | undefined): Classified {
  if (argv.length === 0) return {kind: 'none', detail: 'the image sets no entrypoint'}
  const [exe, ...rest] = argv as [string, ...string[]]
  const base = basename(exe)
  if (SHELLS.has(base)) {
    // `sh -c 'script' [$0 args…]`: it runs our command only if the script uses "$@"
    const c = rest.findIndex((a) => /^-[a-z]*c[a-z]*$/.test(a))
    if (c >= 0) {
      const script = rest[c + 1] ?? ''
      return /\$\{?[@*]/.test(script)
        ? {kind: 'shell-command', detail: `a ${base} -c command that runs its arguments`}
        : {kind: 'ignores-arguments', detail: `a ${base} -c command that ignores its arguments`}
    }
    const script = rest.find((a) => !a.startsWith('-'))
    if (script) return {kind: 'shell-script', detail: `a shell script (${base} ${script})`}
    return {kind: 'ignores-arguments', detail: `a bare ${base} (it would read the probe's command as a script file)`}
  }
  if (INITS.has(base)) {
    const inner = rest.filter((a) => !a.startsWith('-'))
    if (inner.length === 0) return {kind: 'init', detail: `an init (${base}) that runs its arguments`}
    const wrapped = classify(inner, file)
    if ('needs' in wrapped) return wrapped
    return EXECS_ARGUMENTS.has(wrapped.kind) ? {kind: 'init', detail: `an init (${base}) around ${wrapped.detail}`} : wrapped
  }
  if (ENV_MANAGERS.has(base) && rest[0] === 'run')
    return {kind: 'activator', detail: `${base} run: activates an environment, then runs its arguments`}
  if (base === 'env') {
    const inner = rest.filter((a) => !a.startsWith('-') && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(a))
    if (inner.length === 0) return {kind: 'activator', detail: 'env: sets variables, then runs its arguments'}
    return classify(inner, file)
  }
  if (PYTHON.test(base)) return {kind: 'interpreter', detail: `an interpreter (${exe})`}
  if (file === undefined) return {needs: exe}
  return classifyFile(exe, file)
}

/** The interpreter named by a `#!` line (through `env`), or null. */
function shebangProgram(head: Buffer): string | null {
  if (head[0] !== 0x23 || head[1] !== 0x21) return null
  const line = head.subarray(2, 256).toString('latin1').split('\n')[0]!.trim()
  const words = line.split(/\s+/).filter(Boolean)
  if (words.length === 0) return null
  if (basename(words[0]!) === 'env') return words.slice(1).find((w) => !w.startsWith('-') && !w.includes('=')) ?? null
  return words[0]!
}

function classifyFile(exe: string, file: FileHead | 'missing'): EntrypointClass {
  if (file === 'missing') return {kind: 'missing', detail: `${exe}, which the image does not have`}
  if (file.type === 'directory') return {kind: 'missing', detail: `${exe}, a directory`}
  if ((file.mode & 0o111) === 0) return {kind: 'not-executable', detail: `${exe} (mode ${file.mode.toString(8).padStart(4, '0')})`}
  const program = shebangProgram(file.head)
  if (program !== null) {
    const base = basename(program)
    if (SHELLS.has(base)) return {kind: 'shell-script', detail: `a shell script (${exe}, #!${program})`}
    if (PYTHON.test(base)) return {kind: 'interpreter', detail: `a python program (${exe}, #!${program})`}
    return {kind: 'application', detail: `a ${base} program (${exe})`}
  }
  if (file.head.subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46])))
    return {kind: 'application', detail: `an application (${exe})`}
  return {kind: 'application', detail: `${exe} (not a script)`}
}

export interface EntrypointTreatment {
  keep: boolean
  /** for identity and the report: "kept: a shell script (…) [--image-entrypoint auto]" */
  text: string
  /** why it cannot be used, when the image cannot start as built */
  problem: 'not-executable' | 'missing' | null
}

/**
 * `auto` keeps an entrypoint that runs its arguments (a shell script, `sh -c '… "$@"'`, an
 * init, `conda run`) and skips an interpreter or an application; `keep` and `skip` force it.
 */
export function treatEntrypoint(mode: EntrypointMode, cls: EntrypointClass, entrypoint: string[]): EntrypointTreatment {
  const flag = `--image-entrypoint ${mode}`
  if (entrypoint.length === 0) return {keep: false, text: 'none: the image sets no entrypoint', problem: null}
  // skip reads nothing from the image: say what was skipped, not what it might be
  if (mode === 'skip') return {keep: false, text: `skipped: ${entrypoint.join(' ').slice(0, 200)} [${flag}]`, problem: null}
  if (cls.kind === 'not-executable' || (mode === 'keep' && cls.kind === 'missing'))
    return {keep: true, text: `unusable: ${cls.detail} [${flag}]`, problem: cls.kind}
  if (mode === 'keep') return {keep: true, text: `kept: ${cls.detail} [${flag}]`, problem: null}
  return EXECS_ARGUMENTS.has(cls.kind)
    ? {keep: true, text: `kept: ${cls.detail} [${flag}]`, problem: null}
    : {keep: false, text: `skipped: ${cls.detail} [${flag}]`, problem: null}
}

/** Interpreters to try, in order: the user's, or the names the image's own PATH resolves. */
export function interpreterCandidates(requested: string | null | undefined): string[] {
  return requested ? [requested] : ['python3', 'python']
}

/** Where the probe, its inputs and outputs live inside the container: the bounded work area. */
export const WORK_AREA = '/repro'

/**
 * The variables repro adds to the image's environment: defaults only where the image sets
 * none, the probe's directory appended to the image's PYTHONPATH, then the knobs' env (which
 * override on purpose). Returns only what must be passed with `--env`.
 */
export function probeEnvironment(image: Record<string, string>, knobs: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {}
  const defaults: Record<string, string> = {HOME: '/tmp', LANG: 'C.UTF-8', PYTHONDONTWRITEBYTECODE: '1', PYTHONHASHSEED: '0'}
  for (const [k, v] of Object.entries(defaults)) if (image[k] === undefined) out[k] = v
  const probePath = `${WORK_AREA}/probe`
  const own = image['PYTHONPATH']
  out['PYTHONPATH'] = own ? `${own}:${probePath}` : probePath
  // compiled kernels are loaded from here: the work area is bounded and, unlike /tmp, allows exec
  out['REPRO_PROBE_SCRATCH'] = `${WORK_AREA}/scratch`
  return {...out, ...knobs}
}

/** Parse a size such as `256m`, `1g`, `512k` or bytes; null when it is not one. */
export function parseSize(text: string): number | null {
  const m = /^(\d+)([kmg]?)b?$/i.exec(text.trim())
  if (!m) return null
  const unit = {'': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3}[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g']
  const bytes = Number(m[1]) * unit
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : null
}

/** Does the engine run this image natively? Names as `image inspect` and `version` give them. */
export function platformMismatch(
  image: {os: string | null; architecture: string | null},
  engine: {os: string; architecture: string} | null,
): string | null {
  if (!engine || !image.architecture) return null
  const norm = (a: string) => ({x86_64: 'amd64', aarch64: 'arm64', armhf: 'arm'})[a] ?? a
  const same = norm(image.architecture) === norm(engine.architecture) && (image.os ?? 'linux') === engine.os
  return same
    ? null
    : `the image is built for ${image.os ?? 'linux'}/${image.architecture}, the engine runs ${engine.os}/${engine.architecture}`
}

/** What the launcher inside the container reports in status.json (read through `cp`, never stdout). */
export interface BootStatus {
  exit: number
  python: string | null
  /** the work area had (almost) no space left when the probe ended */
  full: boolean
  /** a supervised run (serve mode): the signal that ended the probe, if one did */
  signal: number | null
  /** a supervised run: the container's memory cgroup OOM-killed a process while it ran */
  oom: boolean
}

export function parseBootStatus(text: string): BootStatus | null {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return null
  }
  if (!raw || typeof raw !== 'object') return null
  const r = raw as Record<string, unknown>
  if (typeof r['exit'] !== 'number' || !Number.isInteger(r['exit'])) return null
  return {
    exit: r['exit'],
    python: typeof r['python'] === 'string' ? r['python'].slice(0, 512) : null,
    full: r['full'] === true,
    signal: typeof r['signal'] === 'number' && Number.isInteger(r['signal']) ? r['signal'] : null,
    oom: r['oom'] === true,
  }
}
