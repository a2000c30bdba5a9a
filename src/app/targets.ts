// Turns command-line target flags into target specs (in the order they were given, so
// `--set N:` numbers them as the user sees them), and finds the embedded default: the host's
// own python with torch, audited against itself plus a thread-count variant.

import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {DEFAULT_KNOBS, KnobError, knobsForTarget, parseKnobOverride, type KnobOverride} from '../core/knobs.js'
import type {Knobs} from '../core/types.js'
import {ReproError} from '../errors.js'
import {ContainerTarget} from '../targets/container.js'
import {DEFAULT_LIMITS, rlimitsFromProc, type EngineName} from '../targets/container-args.js'
import {detectEngine, type Engine, type ImageIdentity, inspectImages, makeEngine, sweepBeforeFirstContainer} from '../targets/engine.js'
import {ENTRYPOINT_MODES, type EntrypointMode, parseSize} from '../targets/image-launch.js'
import {spawnCapped} from '../targets/process.js'
import {PythonTarget} from '../targets/python.js'
import {defaultStaging, type SlurmOptions, SlurmTarget} from '../targets/slurm.js'
import {SlurmArrays} from '../targets/slurm-array.js'
import {NodeImageInspector} from '../targets/slurm-inspect.js'
import type {Target} from '../targets/target.js'
import type {AuditTargetSpec} from './audit-types.js'
import type {TargetMemoDirs} from './cache.js'

/** How targets run: knob overrides and the container settings, as flags or a config give them. */
export interface TargetSettings {
  set?: string[]
  engine: string
  device: string
  memory: string
  cpus: string
  'pids-limit': number
  /** `[N:]PATH`: the interpreter inside image target N (or every image target) */
  'python-in-image'?: string[]
  'image-entrypoint'?: string
  'work-area'?: string
  /** local (default) or slurm: where probe runs execute */
  executor?: string
  'slurm-partition'?: string
  'slurm-account'?: string
  'slurm-time'?: string
  'slurm-gres'?: string
  'slurm-arg'?: string[]
  staging?: string
  /** --jobs: with --executor slurm, how many tasks of an array run at once */
  jobs?: number
  /** which of --memory and --cpus the user set (not their defaults); Slurm image runs take the others from the allocation */
  limitsGiven?: {memory: boolean; cpus: boolean}
}

/** The Slurm executor's options from the settings, or null for local runs. */
export function slurmOptions(settings: TargetSettings): SlurmOptions | null {
  if ((settings.executor ?? 'local') !== 'slurm') return null
  return {
    ...(settings['slurm-partition'] ? {partition: settings['slurm-partition']} : {}),
    ...(settings['slurm-account'] ? {account: settings['slurm-account']} : {}),
    ...(settings['slurm-time'] ? {time: settings['slurm-time']} : {}),
    ...(settings['slurm-gres'] ? {gres: settings['slurm-gres']} : {}),
    args: settings['slurm-arg'] ?? [],
    staging: path.resolve(settings.staging ?? defaultStaging()),
    ...(settings.limitsGiven ? {limitsGiven: settings.limitsGiven} : {}),
    throttle: Math.max(1, settings.jobs ?? 1),
  }
}

/** `--python-in-image [N:]PATH` → the interpreter for target `index` (1-based), or null. */
export function pythonInImage(values: string[] | undefined, index: number, targetCount: number): string | null {
  let chosen: string | null = null
  for (const text of values ?? []) {
    const m = /^(\d+):(.+)$/.exec(text)
    const target = m ? Number(m[1]) : null
    const value = (m ? m[2]! : text).trim()
    if (!value || /[\0\n\r]/.test(value))
      throw new ReproError(`--python-in-image ${JSON.stringify(text)} names no interpreter`, {
        subject: '--python-in-image',
        hint: 'write --python-in-image /opt/conda/bin/python (or N:PATH for target N)',
      })
    if (target !== null && (target < 1 || target > targetCount))
      throw new ReproError(`--python-in-image ${text} names target ${target}, but there are ${targetCount}`, {
        subject: '--python-in-image',
        hint: 'number targets in the order they are given, from 1',
      })
    if (target === null || target === index) chosen = value
  }
  return chosen
}

function workArea(text: string | undefined): string {
  const value = text ?? DEFAULT_LIMITS.workArea
  const bytes = parseSize(value)
  if (bytes === null || bytes < 64 * 1024)
    throw new ReproError(`--work-area ${JSON.stringify(value)} is not a size of at least 64k`, {
      subject: '--work-area',
      hint: 'write a size such as --work-area 256m or --work-area 2g',
    })
  return value
}

function entrypointMode(text: string | undefined): EntrypointMode {
  const mode = (text ?? 'auto') as EntrypointMode
  if (!ENTRYPOINT_MODES.includes(mode))
    throw new ReproError(`--image-entrypoint ${JSON.stringify(text)} is not one of ${ENTRYPOINT_MODES.join(', ')}`, {
      subject: '--image-entrypoint',
      hint: 'write --image-entrypoint auto, keep or skip',
    })
  return mode
}

/** The hard limits this process may hand on: podman is our child, a local dockerd shares them. */
function hostRlimits() {
  try {
    return rlimitsFromProc(readFileSync('/proc/self/limits', 'utf8'))
  } catch {
    return rlimitsFromProc(null)
  }
}

export function parseOverrides(sets: string[] | undefined, targetCount: number): KnobOverride[] {
  return (sets ?? []).map((text) => {
    let o: KnobOverride
    try {
      o = parseKnobOverride(text)
    } catch (e) {
      if (e instanceof KnobError)
        throw new ReproError(e.message, {subject: '--set', hint: 'write --set [N:]key=value, e.g. --set 2:threads=2'})
      throw e
    }
    if (o.target !== null && o.target > targetCount) {
      throw new ReproError(`--set ${text} names target ${o.target}, but there are ${targetCount}`, {
        subject: '--set',
        hint: 'number targets in the order they are given, from 1',
      })
    }
    return o
  })
}

export type TargetRef = {kind: 'python' | 'image'; value: string}

/** --python and --image in command-line order (oclif keeps each flag's values, not the mix). */
export function targetOrder(argv: string[], flags: {python?: string[]; image?: string[]}): TargetRef[] {
  const refs: TargetRef[] = []
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(python|image)(?:=(.*))?$/.exec(argv[i]!)
    if (!m) continue
    const value = m[2] ?? argv[++i]
    if (value !== undefined) refs.push({kind: m[1] === 'python' ? 'python' : 'image', value})
  }
  // Fall back to flag order if argv could not be matched one to one (e.g. short forms).
  const expected = (flags.python?.length ?? 0) + (flags.image?.length ?? 0)
  if (refs.length !== expected)
    return [
      ...(flags.python ?? []).map((value) => ({kind: 'python' as const, value})),
      ...(flags.image ?? []).map((value) => ({kind: 'image' as const, value})),
    ]
  return refs
}

/** Does this host have an NVIDIA GPU with a loaded driver? */
export function hostHasNvidiaGpu(): boolean {
  return existsSync('/proc/driver/nvidia/version')
}

/**
 * Target specs for targets named in order (`--set N:` numbers them as given). `memos`: where
 * targets keep what they read about themselves between checks (the run cache's, RunCache.targetMemoDirs).
 */
export async function targetsFromRefs(refs: TargetRef[], settings: TargetSettings, memos?: TargetMemoDirs): Promise<AuditTargetSpec[]> {
  const overrides = parseOverrides(settings.set, refs.length)
  const slurm = slurmOptions(settings)
  // one set of arrays for the audit: runs of all its targets submitted together share an array
  const arrays = slurm ? new SlurmArrays(slurm) : null
  const cuda = settings.device === 'cuda' || (settings.device === 'auto' && hostHasNvidiaGpu())
  const pythons = refs.map((_, i) => pythonInImage(settings['python-in-image'], i + 1, refs.length))
  refs.forEach((r, i) => {
    const explicit = (settings['python-in-image'] ?? []).some((t) => t.startsWith(`${i + 1}:`))
    if (explicit && r.kind !== 'image')
      throw new ReproError(`--python-in-image ${i + 1}:… names target ${i + 1}, which is not an image`, {
        subject: '--python-in-image',
        hint: 'a --python target already names its interpreter',
      })
  })
  const limits = {
    ...DEFAULT_LIMITS,
    ...hostRlimits(),
    memory: settings.memory,
    cpus: settings.cpus,
    pidsLimit: settings['pids-limit'],
    workArea: workArea(settings['work-area']),
  }
  const entrypoint = entrypointMode(settings['image-entrypoint'])
  let engine: Engine | null = null
  let inspected = new Map<string, ImageIdentity>()
  const images = [...new Set(refs.filter((r) => r.kind === 'image').map((r) => r.value))]
  if (images.length > 0 && slurm) {
    // the nodes' engine runs and inspects the images (slurm-inspect.ts): none is asked here
    engine = makeEngine(settings.engine === 'podman' ? 'podman' : 'docker')
  } else if (images.length > 0) {
    // every image in one `image inspect`, beside the engine's `version` (on the likely engine:
    // docker unless podman was asked for); used only if that is the engine detected
    const likely: EngineName = settings.engine === 'podman' ? 'podman' : 'docker'
    const early = inspectImages(makeEngine(likely), images)
    // orphans of a crashed repro are swept before this process's first container
    engine = sweepBeforeFirstContainer(await detectEngine(settings.engine as EngineName | 'auto'))
    if (engine.name === likely) inspected = await early
  }
  // one inspect task per image on a node, shared by the targets that name it
  const inspectors = new Map<string, NodeImageInspector>()
  const nodeInspector = (image: string) => {
    if (!inspectors.has(image))
      inspectors.set(image, new NodeImageInspector(arrays!, slurm!, engine!.name, image, `slurm:${engine!.name}:${image}`))
    return inspectors.get(image)!
  }
  const containerTarget = (image: string, i: number) =>
    new ContainerTarget({
      engine: engine!,
      image,
      gpus: cuda,
      limits,
      python: pythons[i],
      entrypoint,
      ...(inspected.has(image) ? {identity: inspected.get(image)!} : {}),
      ...(memos ? {memoDir: memos.imageFiles} : {}),
      ...(slurm ? {inspector: nodeInspector(image)} : {}),
    })
  return refs.map((ref, i) => {
    const base: Knobs = {...DEFAULT_KNOBS, env: {}, device: cuda ? 'cuda' : 'cpu'}
    const target: Target =
      ref.kind === 'python'
        ? slurm
          ? new SlurmTarget(new PythonTarget(ref.value), slurm, arrays!)
          : new PythonTarget(ref.value, memos ? {memoDir: memos.pythonDistributions} : {})
        : slurm
          ? new SlurmTarget(containerTarget(ref.value, i), slurm, arrays!)
          : containerTarget(ref.value, i)
    return {target, knobs: knobsForTarget(base, overrides, i + 1), role: 'target' as const}
  })
}

export const PYTHON_CANDIDATES = ['python3', '/usr/bin/python3', '/usr/local/bin/python3']

/** The first python (PATH first, then the system's) that can import torch. */
export async function findPythonWithTorch(candidates = PYTHON_CANDIDATES): Promise<string> {
  const tried: string[] = []
  for (const c of candidates) {
    const r = await spawnCapped(c, ['-c', 'import sys, torch; print(sys.executable)'], {
      env: {PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp'},
      timeoutMs: 60_000,
    }).catch(() => null)
    if (r && r.exitCode === 0 && r.stdout.trim()) return r.stdout.trim().split('\n').pop()!
    tried.push(c)
  }
  throw new ReproError(`no python with torch found (tried ${tried.join(', ')})`, {
    subject: 'audit',
    hint: 'install PyTorch (Debian: apt-get install python3-torch) or pass --python PATH',
  })
}

/** The embedded default: one python against itself, plus the same python with threads changed. */
export function defaultDemoTargets(python: string, memos?: TargetMemoDirs): AuditTargetSpec[] {
  const memo = memos ? {memoDir: memos.pythonDistributions} : {}
  const knobs: Knobs = {...DEFAULT_KNOBS, env: {}}
  return [
    {target: new PythonTarget(python, memo), knobs, role: 'target'},
    {
      target: new PythonTarget(python, memo),
      knobs: {...knobs, threads: 2},
      role: 'variant',
      // Flip the thread count relative to what the first run reported as its default.
      deriveKnobs: (first) => ({...knobs, threads: first['threads'] === 1 ? 2 : 1}),
    },
  ]
}
