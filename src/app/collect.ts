// The run stage: every target × its planned runs (repeats, extra seeds), each a probe run in
// the target (or a run-cache hit). A target that fails is recorded with its one-line error and
// the others go on; its later runs are skipped, since they would fail alike.

import path from 'node:path'
import {type PlannedRun, planRuns} from '../core/audit-plan.js'
import {defaultProbeConfig, type ProbeConfig} from '../core/config.js'
import {knobSuffix} from '../core/knobs.js'
import type {TargetRecord} from '../core/report.js'
import type {Knobs, RunArtifacts} from '../core/types.js'
import {traceDigest} from '../artifacts/trace-digest.js'
import type {GitState} from '../env/git.js'
import type {HostFingerprint} from '../env/host.js'
import {isReproError, type ReproError} from '../errors.js'
import type {AuditOptions, AuditTargetSpec, CacheFor, Collected} from './audit-types.js'
import {trainRun} from './execute.js'
import {pool, withDevice} from './pool.js'

export interface CollectContext {
  opts: AuditOptions
  data: {bytes: Buffer; sha256: string}
  host: HostFingerprint
  git: GitState
  cacheFor: CacheFor
}

/** The probe config of one target: the audit's settings with the target's knobs. */
export function targetConfig(opts: AuditOptions, dataSha256: string, knobs: Knobs): ProbeConfig {
  const config = {...defaultProbeConfig({file: 'data.safetensors', sha256: dataSha256}, opts.seed), knobs}
  config.train.epochs = opts.epochs
  config.trace.store_steps = opts.storeSteps
  return config
}

export async function collect(ctx: CollectContext): Promise<Collected> {
  const {opts} = ctx
  const out: Collected = {records: [], runs: new Map(), seedOutcomes: new Map(), configs: new Map()}
  let firstKnobs: Record<string, unknown> | null = null
  const runTarget = async (i: number) => {
    const spec = opts.targets[i]!
    const knobs = spec.deriveKnobs && firstKnobs ? spec.deriveKnobs(firstKnobs) : spec.knobs
    const done = await runOneTarget(ctx, out, spec, i + 1, knobs)
    if (i === 0 && done[0]) firstKnobs = done[0].outcome.knobs_effective
  }
  // The demo's variant needs the first target's defaults; otherwise targets are independent.
  if (opts.targets.some((t) => t.deriveKnobs)) {
    for (let i = 0; i < opts.targets.length; i++) await runTarget(i)
  } else {
    await pool(opts.targets.length, Math.max(1, opts.jobs), runTarget)
  }
  return out
}

async function runOneTarget(
  ctx: CollectContext,
  out: Collected,
  spec: AuditTargetSpec,
  index: number,
  knobs: Knobs,
): Promise<RunArtifacts[]> {
  const {opts} = ctx
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
  const config = targetConfig(opts, ctx.data.sha256, knobs)
  out.configs.set(index, config)
  const done: RunArtifacts[] = []
  for (const planned of planRuns(index, opts.repeats, opts.seed, opts.seeds)) {
    const what = `${name} · ${planned.label}`
    opts.progress.start(what)
    try {
      const {artifacts, seconds, cached, outDir} = await runPlanned(
        ctx,
        spec,
        {...config, train: {...config.train, seed: planned.seed}},
        name,
        planned,
      )
      opts.progress.done(cached ? `${what} (cached)` : what, seconds)
      if (planned.repeat === 0) {
        out.seedOutcomes.set(index, [...(out.seedOutcomes.get(index) ?? []), artifacts.outcome])
        continue
      }
      done.push(artifacts)
      const o = artifacts.outcome
      record.runs.push({
        repeat: planned.repeat,
        dir: outDir,
        seconds,
        cached,
        final: o.final,
        epochs: o.epochs,
        knobs_effective: o.knobs_effective,
        timings: o.timings,
      })
    } catch (e) {
      if (!isReproError(e)) throw e
      failed(record, e, what, opts)
      return []
    }
  }
  await completed(record, spec, done)
  out.runs.set(index, done)
  return done
}

/** One planned probe run (or its run-cache hit), holding the GPU's lock when it trains on one. */
async function runPlanned(ctx: CollectContext, spec: AuditTargetSpec, config: ProbeConfig, name: string, planned: PlannedRun) {
  const outDir = path.join(ctx.opts.outDir, planned.dir)
  const label = `${name} ${planned.repeat ? `r${planned.repeat}` : `seed ${planned.seed}`}`
  const context = {host: ctx.host, git: ctx.git}
  const run = await withDevice(config.knobs.device, () =>
    trainRun({
      target: spec.target,
      config,
      data: ctx.data.bytes,
      outDir,
      timeoutMs: ctx.opts.timeoutMs,
      label,
      context,
      cache: ctx.cacheFor(planned.cacheTag),
    }),
  )
  return {...run, outDir}
}

/** A known failure: recorded with its one-line error, naming the numbered target (the same interpreter or image may appear twice). */
function failed(record: TargetRecord, e: ReproError, what: string, opts: AuditOptions): void {
  const line = `${record.name}: ${e.message} — ${e.hint}`
  opts.progress.fail(what, line)
  record.status = 'error'
  record.error = {message: e.message, hint: e.hint, line}
}

/** A target whose runs all finished: its identity, fingerprint and trace digest go into its record. */
async function completed(record: TargetRecord, spec: AuditTargetSpec, done: RunArtifacts[]): Promise<void> {
  record.identity = await spec.target.identify().then(
    (id) => ({reference: id.reference, details: id.details}),
    () => null,
  )
  record.fingerprint = done[0]!.fingerprint
  record.trace_digest = traceDigest(done[0]!.trace)
}
