// The run stage: every target × workload × its planned runs (repeats, extra seeds), each a
// probe run in the target (or a run-cache hit). A workload that fails in a target is recorded
// with its one-line error and everything else goes on; that workload's later runs in that
// target are skipped, since they would fail alike.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {type PlannedRun, planRuns, targetOccurrences} from '../core/audit-plan.js'
import {defaultProbeConfig, type ProbeConfig} from '../core/config.js'
import {knobSuffix} from '../core/knobs.js'
import type {TargetRecord} from '../core/report.js'
import type {Knobs, RunArtifacts} from '../core/types.js'
import {COMPLETION_SCHEMA, type CompletionRecord, completionMismatch, type ResumeCell} from '../core/resume.js'
import type {EncodedData} from '../artifacts/inputs.js'
import {readCompletion, readRunDir, readSlurmImageId} from '../artifacts/run-dir.js'
import {traceDigest} from '../artifacts/trace-digest.js'
import type {GitState} from '../env/git.js'
import type {HostFingerprint} from '../env/host.js'
import {isReproError, type ReproError} from '../errors.js'
import type {AuditOptions, AuditTargetSpec, AuditWorkload, CacheFor, Collected, CollectedAll} from './audit-types.js'
import {scriptSection} from './script-inputs.js'
import {probeHash} from './cache.js'
import {trainRun} from './execute.js'
import {pool, withDevice} from './pool.js'

export interface RunContext {
  host: HostFingerprint
  git: GitState
}

export interface CollectContext {
  opts: AuditOptions
  /** each workload's encoded data (none for a script) */
  data: Map<AuditWorkload, EncodedData>
  /** the script's digest, when the audit runs one (part of its config, so of its cache key) */
  scriptSha256?: string
  /** what each run's target.json records of where it ran; a promise while it is still measured */
  context: RunContext | Promise<RunContext>
  /** called as each run gets under way (ProbeJob.onStarted): the audit then measures the host */
  onRunStarted?: () => void
  cacheFor: CacheFor
  /** --resume: each planned run as it was decided, in the order decided */
  resumed?: ResumeCell[]
}

/** The probe config of one target and workload: the audit's settings with the target's knobs. */
export function targetConfig(
  opts: Pick<AuditOptions, 'seed' | 'epochs' | 'storeSteps' | 'targets' | 'timeoutMs' | 'script'>,
  workload: AuditWorkload,
  dataSha256: string,
  knobs: Knobs,
  scriptSha256 = '',
): ProbeConfig {
  const config: ProbeConfig = {
    ...defaultProbeConfig({file: 'data.safetensors', sha256: dataSha256}, opts.seed, workload === 'script' ? 'mlp' : workload),
    knobs,
  }
  config.train.epochs = opts.epochs
  config.trace.store_steps = opts.storeSteps
  // data-parallel ranks take equal slices of each batch, so every target drops the trailing partial one
  if (opts.targets.some((t) => t.knobs.world_size > 1)) config.train.drop_last = true
  if (knobs.world_size > 1) config.train.collective_timeout = Math.max(1, Math.ceil(opts.timeoutMs / 1000))
  if (workload === 'script' && opts.script) config.script = scriptSection(opts.script, scriptSha256)
  return config
}

/** Run directory names: the mlp's as before workloads (t1-r1), the others' prefixed (t1-cnn-r1). */
export function runDirName(workload: AuditWorkload, dir: string): string {
  return workload === 'mlp' ? dir : dir.replace(/^(t\d+)-/, `$1-${workload}-`)
}

export async function collect(ctx: CollectContext): Promise<CollectedAll> {
  const {opts} = ctx
  const out: CollectedAll = {
    records: [],
    byWorkload: new Map(opts.workloads.map((w) => [w, {records: [], runs: new Map(), seedOutcomes: new Map(), configs: new Map()}])),
  }
  let firstKnobs: Record<string, unknown> | null = null
  const occurrences = targetOccurrences(
    opts.targets.map((t) => JSON.stringify([t.target.kind, t.target.name, t.knobs, Boolean(t.deriveKnobs)])),
  )
  const runTarget = async (i: number) => {
    const spec = opts.targets[i]!
    const knobs = spec.deriveKnobs && firstKnobs ? spec.deriveKnobs(firstKnobs) : spec.knobs
    const first = await runOneTarget(ctx, out, spec, i + 1, knobs, occurrences[i]!)
    if (i === 0 && first) firstKnobs = first.outcome.knobs_effective
  }
  // The demo's variant needs the first target's defaults; otherwise targets are independent.
  if (opts.targets.some((t) => t.deriveKnobs)) {
    for (let i = 0; i < opts.targets.length; i++) await runTarget(i)
  } else {
    // batched targets (Slurm) all at once: the scheduler's throttle (--jobs) bounds their runs
    const batched = opts.targets.every((t) => t.target.batched)
    // each one's identity first (an image's inspect task on a node), so that the matrix goes in as
    // one array rather than the runs ready at once and, seconds later, the others; an error here
    // is the target's own and comes again from its runs
    if (batched) await Promise.all(opts.targets.map((t) => t.target.identify().catch(() => null)))
    await pool(opts.targets.length, batched ? opts.targets.length : Math.max(1, opts.jobs), runTarget)
  }
  for (const c of out.byWorkload.values()) c.records = out.records
  return out
}

/** Every workload of one target; returns its first completed run (the demo's variant derives its knobs from it). */
async function runOneTarget(
  ctx: CollectContext,
  out: CollectedAll,
  spec: AuditTargetSpec,
  index: number,
  knobs: Knobs,
  occurrence: number,
): Promise<RunArtifacts | null> {
  const name = `#${index} ${spec.target.name}${knobSuffix(knobs)}`
  const record: TargetRecord = {
    index,
    name,
    kind: spec.target.kind,
    role: spec.role,
    knobs_requested: knobs,
    identity: null,
    status: 'ok',
    error: null,
    runs: [],
  }
  out.records[index - 1] = record
  let first: RunArtifacts | null = null
  const one = (workload: AuditWorkload) => runWorkload(ctx, out.byWorkload.get(workload)!, record, spec, workload, knobs, occurrence)
  // a batched target (Slurm) gets every workload at once, their runs recorded in workload order
  const all: RunArtifacts[][] = []
  if (spec.target.batched) {
    all.push(...(await Promise.all(ctx.opts.workloads.map(one))))
    const order = (w: string | undefined) => ctx.opts.workloads.indexOf((w ?? 'mlp') as AuditWorkload)
    record.runs.sort((a, b) => order(a.workload) - order(b.workload))
    record.errors?.sort((a, b) => order(a.workload) - order(b.workload))
    const e = record.errors?.[0]
    if (e) record.error = {message: e.message, hint: e.hint, line: e.line}
  } else for (const w of ctx.opts.workloads) all.push(await one(w))
  for (const [i, workload] of ctx.opts.workloads.entries()) {
    const collected = out.byWorkload.get(workload)!
    const done = all[i]!
    if (done.length === 0) continue
    collected.runs.set(index, done)
    first ??= done[0]!
    record.trace_digests = {...record.trace_digests, [workload]: traceDigest(done[0]!.trace)}
  }
  if (first) {
    record.identity = await spec.target.identify().then(
      (id) => ({reference: id.reference, details: id.details}),
      () => null,
    )
    record.fingerprint = first.fingerprint
    record.trace_digest = record.trace_digests![ctx.opts.workloads.find((w) => record.trace_digests![w])!]
    if (ctx.opts.workloads.length === 1) delete record.trace_digests
  }
  return first
}

/** One workload's planned runs in one target: its repeats' artifacts, or none when it failed. */
async function runWorkload(
  ctx: CollectContext,
  collected: Collected,
  record: TargetRecord,
  spec: AuditTargetSpec,
  workload: AuditWorkload,
  knobs: Knobs,
  occurrence: number,
): Promise<RunArtifacts[]> {
  const {opts} = ctx
  const data = ctx.data.get(workload)!
  const config = targetConfig(opts, workload, data.sha256, knobs, ctx.scriptSha256)
  collected.configs.set(record.index, config)
  const many = opts.workloads.length > 1
  const plans = planRuns(record.index, opts.repeats, opts.seed, opts.seeds, occurrence)
  type Planned = (typeof plans)[number]
  type Ran = {run: Awaited<ReturnType<typeof attempt>>; planned: Planned} | {error: ReproError; what: string}
  const whatOf = (planned: Planned) => `${record.name}${many ? ` · ${workload}` : ''} · ${planned.label}`
  // a batched target's repeats run at once: the first to fail cancels the others (the workload's
  // result is that failure), and it is the one reported
  const sibling = new AbortController()
  let first: Ran | null = null
  const attempt = async (planned: Planned) => {
    const what = whatOf(planned)
    const runConfig = {...config, train: {...config.train, seed: planned.seed}}
    const dir = runDirName(workload, planned.dir)
    // --resume: a complete run made from the same inputs is taken as it is; otherwise say why it runs again
    const kept = ctx.resumed ? await resumeCheck(path.join(opts.outDir, dir), spec, runConfig, `${record.name} ${planned.label}`) : null
    if (kept) ctx.resumed!.push({dir, decision: kept.artifacts ? {reuse: true} : {reuse: false, reason: kept.reason}})
    const shown = kept && !kept.artifacts ? `${what} (ran again: ${kept.reason})` : what
    if (!kept?.artifacts) opts.progress.start(shown)
    const run = kept?.artifacts
      ? {artifacts: kept.artifacts, seconds: 0, cached: false, resumed: true, outDir: path.join(opts.outDir, dir)}
      : {...(await runPlanned(ctx, spec, data, runConfig, record.name, {...planned, dir}, sibling.signal)), resumed: false}
    opts.progress.done(run.resumed ? `${what} (resumed)` : run.cached ? `${shown} (cached)` : shown, run.seconds)
    return run
  }
  const tried = async (planned: Planned): Promise<Ran> => {
    try {
      return {run: await attempt(planned), planned}
    } catch (e) {
      if (!isReproError(e)) throw e
      const r = {error: e, what: whatOf(planned)}
      if (!sibling.signal.aborted) {
        first = r
        sibling.abort()
      }
      return r
    }
  }
  // a batched target (Slurm) gets every repeat at once; otherwise they run one after another
  // and the first failure ends the workload
  const ran: Ran[] = []
  if (spec.target.batched) ran.push(...(await Promise.all(plans.map(tried))))
  else
    for (const planned of plans) {
      const r = await tried(planned)
      ran.push(r)
      if ('error' in r) break
    }
  const done: RunArtifacts[] = []
  for (const r of ran) {
    if ('error' in r) {
      const reported = (first ?? r) as typeof r
      failed(record, reported.error, reported.what, many ? workload : null, opts)
      return []
    }
    const {run, planned} = r
    const o = run.artifacts.outcome
    if (planned.repeat === 0) {
      collected.seedOutcomes.set(record.index, [...(collected.seedOutcomes.get(record.index) ?? []), o])
      continue
    }
    done.push(run.artifacts)
    record.runs.push({
      ...(many || workload !== 'mlp' ? {workload} : {}),
      repeat: planned.repeat,
      dir: run.outDir,
      seconds: run.seconds,
      cached: run.cached,
      ...(run.resumed ? {resumed: true} : {}),
      final: o.final,
      epochs: o.epochs,
      knobs_effective: o.knobs_effective,
      timings: o.timings,
      ...(o.alerts.length ? {alerts: o.alerts} : {}),
      ...(o.attention_path ? {attention_path: o.attention_path} : {}),
      ...(o.compiled ? {compiled: o.compiled} : {}),
      ...(o.script ? {script: o.script} : {}),
      ...(o.knobs_overridden?.length ? {knobs_overridden: o.knobs_overridden} : {}),
      ...(o.metrics ? {metrics: o.metrics} : {}),
      ...(o.distributed ? {distributed: o.distributed} : {}),
    })
  }
  return done
}

/** One planned probe run (or its run-cache hit), holding the GPU's lock when it trains on one. */
async function runPlanned(
  ctx: CollectContext,
  spec: AuditTargetSpec,
  data: EncodedData,
  config: ProbeConfig,
  name: string,
  planned: PlannedRun,
  signal?: AbortSignal,
) {
  const outDir = path.join(ctx.opts.outDir, planned.dir)
  const label = `${name} ${planned.repeat ? `r${planned.repeat}` : `seed ${planned.seed}`}`
  const script = config.script ? ctx.opts.script : undefined
  // nothing of what the directory held is kept (an earlier audit's run into the same --out, one
  // --resume did not take, anything planted): the run never writes through a symlink left there,
  // no stale file passes for its own, and without a completion record while it is under way an
  // interrupted run is never resumed
  await fs.rm(outDir, {recursive: true, force: true})
  const run = await withDevice(config.knobs.device, () =>
    trainRun({
      target: spec.target,
      config,
      data: data.bytes.length ? data.bytes : null,
      outDir,
      timeoutMs: ctx.opts.timeoutMs,
      label,
      context: ctx.context,
      ...(ctx.onRunStarted ? {onStarted: ctx.onRunStarted} : {}),
      cache: ctx.cacheFor(planned.cacheTag),
      ...(script ? {script} : {}),
      ...(signal ? {signal} : {}),
    }),
  )
  await writeCompletion(outDir, await completionFor(spec, config, outDir))
  return {...run, outDir}
}

export const COMPLETION_FILE = 'complete.json'

/**
 * The completion record a run of `config` in this target gets: its identity (for images the
 * ID inspected here, or the one a Slurm cell's node ran when `ranIn` holds its slurm.json).
 */
export async function completionFor(spec: AuditTargetSpec, config: ProbeConfig, ranIn?: string): Promise<CompletionRecord> {
  const id = await spec.target.identify()
  const inspected = id.kind === 'python' ? null : String(id.details['id'] ?? '') || null
  const ran =
    ranIn && id.details['executor'] === 'slurm' && inspected ? await readSlurmImageId(ranIn, spec.target.name).catch(() => null) : null
  return {
    schema: COMPLETION_SCHEMA,
    target: {
      name: spec.target.name,
      kind: id.kind,
      image_id: ran ?? inspected,
      python: id.kind === 'python' ? String(id.details['path'] ?? id.reference) : null,
    },
    probe: await probeHash(),
    config,
  }
}

/** Written once the run's artifacts read back valid, atomically (a temp file renamed into place). */
export async function writeCompletion(outDir: string, record: CompletionRecord): Promise<void> {
  const tmp = path.join(outDir, `.${COMPLETION_FILE}.${process.pid}`)
  await fs.rm(tmp, {force: true})
  // a fresh file (wx), never through a link of that name
  await fs.writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, {flag: 'wx'})
  await fs.rename(tmp, path.join(outDir, COMPLETION_FILE))
}

/**
 * --resume: the run directory `outDir` holds, when its completion record matches the one this
 * run would get and its artifacts read back valid (the same readers as a fresh run), else why
 * not. Whatever the directory holds, the answer is a reason to run again, never a crash. The
 * audit's own runs and the explain stage's reruns are resumed alike.
 */
export async function resumeCheck(
  outDir: string,
  spec: AuditTargetSpec,
  config: ProbeConfig,
  label: string,
): Promise<{artifacts: RunArtifacts; reason?: undefined} | {artifacts?: undefined; reason: string}> {
  const stat = await fs.lstat(outDir).catch(() => null)
  if (!stat) return {reason: 'its run directory is missing'}
  if (!stat.isDirectory()) return {reason: 'its run directory is not a directory'}
  const present = await fs.lstat(path.join(outDir, COMPLETION_FILE)).catch(() => null)
  if (!present) return {reason: 'no complete run there (interrupted or failed)'}
  // outside the catch: a target that cannot say what it is now fails as it would for a fresh run
  const now = await completionFor(spec, config)
  try {
    const stored = await readCompletion(outDir, label)
    const mismatch = completionMismatch(now, stored)
    if (mismatch) return {reason: mismatch}
    return {artifacts: await readRunDir(outDir, label)}
  } catch (e) {
    // a damaged or hostile run directory is a reason to run again, whatever broke reading it
    return {reason: `its artifacts do not read back (${(e as Error).message.slice(0, 200)})`}
  }
}

/**
 * A known failure: recorded with its one-line error, naming the numbered target (the same
 * interpreter or image may appear twice) and, in an audit of several workloads, the workload.
 */
function failed(record: TargetRecord, e: ReproError, what: string, workload: AuditWorkload | null, opts: AuditOptions): void {
  const line = `${record.name}: ${workload ? `${workload}: ` : ''}${e.message} — ${e.hint}`
  opts.progress.fail(what, line)
  record.status = 'error'
  record.error ??= {message: e.message, hint: e.hint, line}
  if (workload) record.errors = [...(record.errors ?? []), {workload, message: e.message, hint: e.hint, line}]
}
