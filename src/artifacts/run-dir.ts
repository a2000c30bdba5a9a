// Reads a run directory (docs/artifacts.md) into validated RunArtifacts: every file is
// size-capped before it is read and parsed through the zod schemas before it is used; stored
// tensor values are validated up front and read from their file when used (stored-values.ts).

import {closeSync, promises as fs} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'
import type {Fingerprint, RunArtifacts, RunOutcome, StoredValues, Trace} from '../core/types.js'
import {COMPLETION_SCHEMA, type CompletionRecord} from '../core/resume.js'
import {z} from 'zod'
import {SafetensorsFormatError} from './safetensors.js'
import {LazyStoredValues, openRegularFile} from './stored-values.js'
import {captureSchema, firstIssue, parseFingerprint, plainTrace, replayResultSchema, runSchema, traceSchema} from './schemas.js'
import {PARSE_ONCE} from './parse-once.js'

export const FILE_CAPS = {
  'fingerprint.json': 8 * 1024 * 1024,
  'run.json': 1024 * 1024,
  'trace.json': 64 * 1024 * 1024,
  'tensors.safetensors': 512 * 1024 * 1024,
  'target.json': 1024 * 1024,
  'replay.json': 16 * 1024 * 1024,
  'replay.safetensors': 512 * 1024 * 1024,
  'capture.json': 8 * 1024 * 1024,
  'capture.safetensors': 1024 * 1024 * 1024,
  'complete.json': 1024 * 1024,
  'slurm.json': 64 * 1024,
} as const
export type ArtifactFile = keyof typeof FILE_CAPS

const HINT_RERUN = 'rerun the target with `repro run`, or point at a complete run directory'

export async function readCapped(dir: string, file: ArtifactFile, subject: string): Promise<Buffer> {
  await checkCapped(dir, file, subject)
  return fs.readFile(path.join(dir, file))
}

/** `file` in `dir` exists, is a regular file (not a symlink) and is within its cap; else the ReproError that says which. */
async function checkCapped(dir: string, file: ArtifactFile, subject: string): Promise<void> {
  const p = path.join(dir, file)
  let stat: Awaited<ReturnType<typeof fs.lstat>>
  try {
    stat = await fs.lstat(p)
  } catch {
    throw new ReproError(`${file} is missing in ${dir}`, {subject, hint: HINT_RERUN})
  }
  // A symlink planted by a hostile target could point anywhere on the host.
  if (!stat.isFile()) throw notRegular(dir, file, subject)
  if (stat.size > FILE_CAPS[file]) throw overCap(file, stat.size, subject)
}

function notRegular(dir: string, file: ArtifactFile, subject: string): ReproError {
  return new ReproError(`${file} in ${dir} is not a regular file`, {subject, hint: HINT_RERUN})
}

function overCap(file: ArtifactFile, size: number, subject: string): ReproError {
  return new ReproError(`${file} is ${size} bytes, over the ${FILE_CAPS[file]}-byte cap`, {
    subject,
    hint: 'the probe output is not trusted past its caps; store fewer steps (--store-steps) or check the target',
  })
}

/**
 * `file` in `dir`, checked as readCapped checks it, opened (no symlink followed) rather than
 * read: its descriptor and size, checked again on the open file.
 */
async function openCapped(dir: string, file: ArtifactFile, subject: string): Promise<{fd: number; size: number}> {
  await checkCapped(dir, file, subject)
  let opened: ReturnType<typeof openRegularFile>
  try {
    opened = openRegularFile(path.join(dir, file))
  } catch {
    throw new ReproError(`${file} is missing in ${dir}`, {subject, hint: HINT_RERUN})
  }
  if ('notRegular' in opened) throw notRegular(dir, file, subject)
  if (opened.size > FILE_CAPS[file]) {
    closeSync(opened.fd)
    throw overCap(file, opened.size, subject)
  }
  return opened
}

async function readJson(dir: string, file: ArtifactFile, subject: string): Promise<unknown> {
  const buf = await readCapped(dir, file, subject)
  try {
    return JSON.parse(buf.toString('utf8'))
  } catch {
    throw new ReproError(`${file} in ${dir} is not valid JSON (truncated?)`, {subject, hint: HINT_RERUN})
  }
}

/** An op replay's outputs (replay.json, validated): entry name → sha256. */
export interface ReplayResult {
  /** output name → sha256 */
  outputs: Record<string, string>
  /** kind init: the generator state's sha256 before the initializers */
  rng_before?: string
  /** the oneDNN primitives the replayed op ran (absent: not recorded) */
  onednn?: string[]
}

export async function readReplayResult(dir: string, subject: string): Promise<ReplayResult> {
  const raw = await readJson(dir, 'replay.json', subject)
  const parsed = replayResultSchema.safeParse(raw, PARSE_ONCE)
  if (!parsed.success) throw new ReproError(`replay.json in ${dir} is invalid: ${firstIssue(parsed.error)}`, {subject, hint: HINT_RERUN})
  if (parsed.data.status !== 'ok')
    throw new ReproError(`the replay failed: ${parsed.data.error?.type ?? 'error'}: ${parsed.data.error?.message ?? ''}`.slice(0, 600), {
      subject,
      hint: 'see stderr.txt in the replay directory',
    })
  const {rng_before, onednn} = parsed.data
  return {
    outputs: Object.fromEntries(parsed.data.entries.map((e) => [e.name, e.sha256])),
    ...(rng_before ? {rng_before} : {}),
    ...(onednn ? {onednn: onednn.map((p) => p.replace(/[^\w:.,+-]/g, '?'))} : {}),
  }
}

export async function readFingerprintFile(dir: string, subject: string): Promise<Fingerprint> {
  const raw = await readJson(dir, 'fingerprint.json', subject)
  try {
    return parseFingerprint(raw)
  } catch (e) {
    throw new ReproError(`fingerprint.json in ${dir} is invalid: ${(e as Error).message}`, {subject, hint: HINT_RERUN})
  }
}

export async function readRunFile(dir: string, subject: string): Promise<RunOutcome> {
  const raw = await readJson(dir, 'run.json', subject)
  const parsed = runSchema.safeParse(raw, PARSE_ONCE)
  if (!parsed.success) throw new ReproError(`run.json in ${dir} is invalid: ${firstIssue(parsed.error)}`, {subject, hint: HINT_RERUN})
  const r = parsed.data
  // runs made before workloads existed are the tabular mlp's
  const workload = r.workload === undefined ? 'mlp' : r.workload
  return {
    status: r.status,
    error: r.error,
    workload,
    outcome_metric: r.outcome_metric ?? (workload === null ? null : 'val_accuracy'),
    knobs_effective: r.knobs_effective,
    steps: r.steps,
    module_types: r.model?.module_types ?? {},
    epochs: r.epochs,
    final: {
      val_accuracy: r.final.val_accuracy,
      val_loss: r.final.val_loss,
      train_loss: r.final.train_loss ?? null,
      val_rmse: r.final.val_rmse ?? null,
    },
    timings: r.timings,
    alerts: r.nondeterministic_alerts,
    attention_path: r.model?.attention_path ?? null,
    ...(r.compiled ? {compiled: r.compiled} : {}),
    ...(r.script ? {script: r.script} : {}),
    ...(r.knobs_overridden ? {knobs_overridden: r.knobs_overridden} : {}),
    ...(r.distributed ? {distributed: r.distributed} : {}),
    ...(metricsOf(r.final) ? {metrics: metricsOf(r.final)!} : {}),
  }
}

export async function readTraceFile(dir: string, subject: string): Promise<Trace> {
  const raw = await readJson(dir, 'trace.json', subject)
  let trace = plainTrace(raw) // the common case, checked by hand (schemas.ts)
  if (trace === null) {
    const parsed = traceSchema.safeParse(raw, PARSE_ONCE)
    if (!parsed.success) throw new ReproError(`trace.json in ${dir} is invalid: ${firstIssue(parsed.error)}`, {subject, hint: HINT_RERUN})
    trace = parsed.data
  }
  return trace.capture ? {steps: trace.steps, capture: trace.capture} : {steps: trace.steps}
}

/** A capture (capture.json, validated): the module's inputs at a step, as the probe hashed them. */
export async function readCapture(dir: string, subject: string) {
  const raw = await readJson(dir, 'capture.json', subject)
  const parsed = captureSchema.safeParse(raw, PARSE_ONCE)
  if (!parsed.success) throw new ReproError(`capture.json in ${dir} is invalid: ${firstIssue(parsed.error)}`, {subject, hint: HINT_RERUN})
  return {meta: parsed.data, raw: raw as Record<string, unknown>}
}

/**
 * The values of a safetensors artifact (tensors.safetensors, replay.safetensors), capped and
 * validated — header, names, dtypes, shapes and every offset against the file's size — now;
 * each entry's values are read from the file when they are asked for (LazyStoredValues). An
 * invalid file fails here; a file that shrinks after this fails the read, with the same error.
 * `onRead` (tests) sees every read from the file.
 */
export async function readStoredValues(
  dir: string,
  subject: string,
  name: 'tensors.safetensors' | 'replay.safetensors' = 'tensors.safetensors',
  onRead?: (offset: number, length: number) => void,
): Promise<StoredValues> {
  const {fd, size} = await openCapped(dir, name, subject)
  const corrupt = (e: unknown): never => {
    if (e instanceof SafetensorsFormatError) throw new ReproError(`${name} in ${dir} is corrupt: ${e.message}`, {subject, hint: HINT_RERUN})
    throw e
  }
  return LazyStoredValues.fromFile(fd, size, corrupt, onRead)
}

/** Read a complete training run. `label` names it in errors and reports. */
export async function readRunDir(dir: string, label: string): Promise<RunArtifacts> {
  const [fingerprint, outcome] = await Promise.all([readFingerprintFile(dir, label), readRunFile(dir, label)])
  if (outcome.status !== 'ok') {
    const err = outcome.error
    throw new ReproError(`the probe failed: ${err?.type ?? 'error'}: ${err?.message ?? 'no message'}`, {
      subject: label,
      hint: 'see stderr.txt in the run directory',
    })
  }
  const [trace, values] = await Promise.all([readTraceFile(dir, label), readStoredValues(dir, label)])
  return {label, fingerprint, outcome, trace, values}
}

/** A script's own metrics: the finite numbers in run.json `final` beyond the fixed four. */
function metricsOf(final: Record<string, unknown>): Record<string, number> | null {
  const fixed = new Set(['val_accuracy', 'val_loss', 'train_loss', 'val_rmse'])
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(final).slice(0, 256)) {
    if (!fixed.has(k) && typeof v === 'number' && Number.isFinite(v) && k.length <= 128) out[k] = v
  }
  return Object.keys(out).length ? out : null
}

// complete.json: what a finished run was made from (core/resume.ts); the config is compared
// whole, so only the fields the comparison reads first are typed here
const completionSchema = z.object({
  schema: z.literal(COMPLETION_SCHEMA),
  target: z.object({
    name: z.string().max(4096),
    kind: z.string().max(64),
    image_id: z.string().max(512).nullable(),
    python: z.string().max(4096).nullable(),
  }),
  probe: z.string().regex(/^[0-9a-f]{64}$/),
  config: z.looseObject({
    workload: z.string().max(64),
    data: z.looseObject({sha256: z.string().max(128)}),
    train: z.looseObject({seed: z.number()}),
    knobs: z.looseObject({}),
    trace: z.looseObject({}),
  }),
})

/** A run directory's completion record (complete.json), validated; a ReproError names what is wrong. */
export async function readCompletion(dir: string, subject: string): Promise<CompletionRecord> {
  const raw = await readJson(dir, 'complete.json', subject)
  const parsed = completionSchema.safeParse(raw)
  if (!parsed.success) throw new ReproError(`complete.json in ${dir} is invalid: ${firstIssue(parsed.error)}`, {subject, hint: HINT_RERUN})
  return parsed.data as unknown as CompletionRecord
}

/** The image ID a Slurm cell's node ran (slurm.json), or null where the run has none. */
export async function readSlurmImageId(dir: string, subject: string): Promise<string | null> {
  const raw = await readJson(dir, 'slurm.json', subject)
  const parsed = z.looseObject({image_id: z.string().max(512).nullable().optional()}).safeParse(raw)
  return parsed.success ? (parsed.data.image_id ?? null) : null
}
