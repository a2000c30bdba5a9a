// The prepared-run format (`repro.prepared/2`): one run staged as a folder with spec.json, which
// probe/node_runner.py (stdlib python, no node.js) runs — a Slurm job's stage and each entry of
// `repro prepare` alike — and a prepared folder's manifest.json and run.sh. The builders here are
// pure; the staging itself (files) is src/targets/node-run.ts.

import {z} from 'zod'

export const RUN_SPEC_SCHEMA = 'repro.prepared/2'
/** the first `repro prepare` format (knob variants, `python3 -m repro_probe train` directly) */
export const OLD_PREPARED_SCHEMA = 'repro.prepared/1'

/** An image run: the container's `create` in parts, as createParts gives them. */
export interface ImageRunEntry {
  engine: 'docker' | 'podman'
  /** `create` and its options (a Slurm node's runner fits GPUs, memory and CPUs to the allocation) */
  options: string[]
  /** the image as the user named it: the running machine's own image under that name */
  image: string
  command: string[]
  /** `rm` and its flags; the runner appends the container */
  remove: string[]
  work_area: string
  inputs_tar: string
  out_tar: string
  /** bytes of out/ the runner keeps at most */
  out_cap: number
  limits_from_allocation: {memory: boolean; cpus: boolean}
}

/**
 * An inspect task: what a node's engine says about an image target's image (the launch plan is
 * made from it), so the submit host needs no engine. `read`: paths whose first bytes the
 * launch plan needs (the entrypoint's file), read with `cp` from a container made by `create`
 * (with the container's name and `read_image` appended) and removed with `remove`.
 */
export interface InspectEntry {
  engine: 'docker' | 'podman'
  image: string
  version_format: string
  inspect_out: string
  read?: string[]
  read_image?: string
  create?: string[]
  cp?: string[]
  remove?: string[]
  file_out?: string
}

/** The run spec node_runner.py reads: paths starting with ./ are relative to the spec's folder. */
export type RunSpec = {
  schema: typeof RUN_SPEC_SCHEMA
  timeout_seconds: number
  status: string
} & (
  | {python: string; argv: string[]; env: Record<string, string>}
  | {image: ImageRunEntry}
  | {inspect: InspectEntry}
  /** an identify task: a python target's interpreter on the node (real path, size, mtime), not run */
  | {identify: {python: string}}
)

/** What a staged run leaves in its folder once the runner ran it. */
export const STAGED = {spec: 'spec.json', status: 'status.json', out: 'out', outTar: 'out.tar'} as const

export interface PreparedTarget {
  /** `repro prepare --variants`: the variant this target is (its name in the variants file) */
  variant?: string
  /** 1-based, in command-line order (as an audit numbers them) */
  index: number
  /** as an audit names it: `docker:IMAGE`, `python:/usr/bin/python3` */
  name: string
  kind: 'python' | 'docker' | 'podman'
  /** what the user passed (--python PATH, --image NAME) */
  reference: string
  /** image targets: the ID inspected on the preparing host */
  image_id: string | null
  /** the knobs requested (--set) */
  knobs: object
}

export interface PreparedRun {
  /** the run's folder, relative to the manifest (an audit's run directory name: t1-r1, t2-cnn-r1) */
  dir: string
  /** `repro prepare --variants`: its target's variant name */
  variant?: string
  target: number
  workload: string
  /** 1-based repeat with the base seed; 0 for an extra-seed run */
  repeat: number
  seed: number
  spec: RunSpec
}

export interface PreparedManifest {
  schema: typeof RUN_SPEC_SCHEMA
  created: string
  command: string
  settings: {repeats: number; seeds: number; seed: number; epochs: number; workloads: string[]; timeout_seconds: number}
  targets: PreparedTarget[]
  runs: PreparedRun[]
}

/** The manifest of a prepared folder (pure): its runs in plan order, each naming one of its targets by index. */
export function preparedManifest(m: Omit<PreparedManifest, 'schema'>): PreparedManifest {
  const indexes = new Set(m.targets.map((t) => t.index))
  const dirs = new Set<string>()
  for (const r of m.runs) {
    if (!indexes.has(r.target)) throw new Error(`run ${r.dir} names target ${r.target}, which the manifest does not list`)
    if (dirs.has(r.dir)) throw new Error(`two runs share the folder ${r.dir}`)
    dirs.add(r.dir)
  }
  return {schema: RUN_SPEC_SCHEMA, ...m}
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/**
 * run.sh (pure): every run, one after the other, through the node runner (`$PYTHON`, default
 * python3: the runner is stdlib only; it starts each run's own interpreter or container); it
 * goes on past a failed run and exits 1 if any failed.
 */
export function runScript(runs: Pick<PreparedRun, 'dir'>[]): string {
  const lines = [
    '#!/bin/sh',
    '# Runs every prepared probe run, one after the other (written by repro prepare): each through',
    '# probe/node_runner.py, which writes <run>/status.json and the artifacts (<run>/out/, or',
    '# <run>/out.tar for an image run). Then, where repro runs: repro compare <this folder>.',
    '# Usage: sh run.sh   (PYTHON=/path/to/python3 sh run.sh to start the runner with another python)',
    'cd "$(dirname "$0")" || exit 2',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    'PY="${PYTHON:-python3}"',
    'failed=0',
  ]
  for (const r of runs) {
    const dir = shellQuote(r.dir)
    lines.push(
      `echo "run ${r.dir.replace(/["$`\\]/g, '')}" >&2`,
      `"$PY" -S probe/node_runner.py ${shellQuote(`${r.dir}/${STAGED.spec}`)} || { echo "failed: "${dir} >&2; failed=1; }`,
    )
  }
  lines.push('exit $failed')
  return `${lines.join('\n')}\n`
}

const nodeStatusSchema = z.object({
  exit: z.number().int().nullable(),
  signal: z.string().max(64).nullable(),
  seconds: z.number(),
  timed_out: z.boolean(),
  terminated: z.string().max(64).nullable(),
  stderr_tail: z.string().max(256 * 1024),
  node: z.string().max(256),
  image_id: z.string().max(256).nullable().optional(),
  container: z
    .object({
      phase: z.string().max(64).nullable(),
      error: z.string().max(256 * 1024),
      exit_code: z.number().int().nullable(),
      oom_killed: z.boolean(),
      boot: z.object({exit: z.number().int(), python: z.string().max(4096).nullable(), full: z.boolean().optional()}).nullable(),
      out_truncated: z.boolean(),
    })
    .optional(),
  /** an inspect task's answer: the engine's `version`, and which path's first bytes it read */
  inspect: z
    .object({version: z.string().max(1024), ok: z.boolean(), error: z.string().max(256 * 1024), file: z.string().max(4096).nullable()})
    .optional(),
  /** an identify task's answer */
  identify: z
    .object({
      real_path: z.string().max(4096).nullable(),
      size: z.number().nullable(),
      mtime: z.string().max(64).nullable(),
      error: z.string().max(8192),
    })
    .optional(),
  /** the job's allocation on a Slurm node */
  allocation: z
    .object({gpus: z.array(z.string().max(256)).max(64).nullable(), memory_mb: z.number().nullable(), cpus: z.string().max(64).nullable()})
    .optional(),
})
export type NodeStatus = z.infer<typeof nodeStatusSchema>

/** status.json as the runner writes it, or null when it is not one (untrusted: written by the machine that ran it). */
export function parseNodeStatus(text: string): NodeStatus | null {
  try {
    const r = nodeStatusSchema.safeParse(JSON.parse(text))
    return r.success ? r.data : null
  } catch {
    return null
  }
}

/** Did the run end cleanly: the probe exited 0 (in its container, for an image run)? (pure) */
export function cleanEnd(s: NodeStatus): boolean {
  return s.container ? s.container.phase === 'status' && s.container.boot?.exit === 0 : s.exit === 0
}

/** How a run that did not end cleanly ended, in a few words (pure). */
export function endedHow(s: NodeStatus): string {
  if (s.timed_out) return 'timed out'
  if (s.terminated) return `terminated (${s.terminated})`
  const c = s.container
  if (c) {
    if (c.phase === 'status') return `the probe exited ${c.boot?.exit ?? '?'} in its container`
    if (c.oom_killed) return 'the container ran out of memory'
    return `the container stopped at ${c.phase ?? 'an unknown phase'}${c.exit_code !== null ? ` (exit ${c.exit_code})` : ''}`
  }
  return s.signal ? `killed (${s.signal})` : `the probe exited ${s.exit ?? '?'}`
}

const manifestHead = z.object({schema: z.string().max(64)}).passthrough()
const manifestSchema = z.object({
  schema: z.literal(RUN_SPEC_SCHEMA),
  runs: z
    .array(
      z
        .object({
          dir: z
            .string()
            .min(1)
            .max(255)
            .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'a run folder is one plain name'),
          target: z.number().int().positive(),
          workload: z.string().max(64),
          repeat: z.number().int().nonnegative(),
          seed: z.number().int(),
        })
        .passthrough(),
    )
    .max(100_000),
  targets: z.array(z.object({index: z.number().int(), name: z.string().max(4096)}).passthrough()).max(1000),
})

/** The runs a manifest.json lists (dir, target, workload, repeat, seed), or why it is not one. */
export function parsePreparedManifest(
  text: string,
):
  | {ok: true; runs: {dir: string; target: number; targetName: string; workload: string; repeat: number; seed: number}[]}
  | {ok: false; old: boolean} {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return {ok: false, old: false}
  }
  const head = manifestHead.safeParse(raw)
  if (head.success && head.data.schema === OLD_PREPARED_SCHEMA) return {ok: false, old: true}
  const m = manifestSchema.safeParse(raw)
  if (!m.success) return {ok: false, old: false}
  const names = new Map(m.data.targets.map((t) => [t.index, t.name]))
  return {
    ok: true,
    runs: m.data.runs.map((r) => ({
      dir: r.dir,
      target: r.target,
      targetName: names.get(r.target) ?? `#${r.target}`,
      workload: r.workload,
      repeat: r.repeat,
      seed: r.seed,
    })),
  }
}
