// `repro audit`: every target × repeats, then compare (repeats within a target, each target
// against the first), then the verdict. A target that fails is recorded and the rest go on.

import path from 'node:path'
import {defaultProbeConfig, type ProbeConfig} from '../core/config.js'
import {knobSuffix} from '../core/knobs.js'
import type {TabularData} from '../core/data.js'
import {diffFingerprints} from '../core/fingerprint-diff.js'
import {compareTraces, type TraceComparison} from '../core/trace-compare.js'
import {decideVerdict, REPORT_SCHEMA, summarizeDivergence, type AuditReport, type PairRecord, type TargetRecord} from '../core/report.js'
import {DEFAULT_FP32_TOLERANCE, DEFAULT_FP64_TOLERANCE, type Knobs, type RunArtifacts, type RunOutcome} from '../core/types.js'
import {encodeData} from '../artifacts/inputs.js'
import {traceDigest} from '../artifacts/trace-digest.js'
import {gitState} from '../env/git.js'
import {hostFingerprint} from '../env/host.js'
import {isReproError} from '../errors.js'
import type {Target} from '../targets/target.js'
import {trainRun} from './execute.js'
import {ensureOutDir} from './out-dir.js'
import type {RunCache} from './cache.js'
import {pool, withDevice} from './pool.js'
import type {HostFingerprint} from '../env/host.js'
import {attribute} from './explain.js'
import type {Progress} from './progress.js'
import {toolVersion} from './version.js'

export interface AuditTargetSpec {
  target: Target
  knobs: Knobs
  role: 'target' | 'variant'
  /** The demo's knob variant is only known once the first target reports its defaults. */
  deriveKnobs?: (firstRunKnobs: Record<string, unknown>) => Knobs
}

export interface AuditOptions {
  targets: AuditTargetSpec[]
  repeats: number
  seed: number
  /** train every target with this many seeds (seed, seed+1, …); the first also gets the repeats */
  seeds: number
  /** counterfactual reruns when drift is found; 0 turns explaining off */
  explainBudget: number
  /** steps whose values are stored (null: the probe's default set) */
  storeSteps: number[] | null
  /** targets run concurrently (CPU targets; GPU targets are serialized per device) */
  jobs: number
  /** reuse and store probe runs; null with --no-cache */
  cache: RunCache | null
  epochs: number
  data: TabularData
  timeoutMs: number
  outDir: string
  command: string
  progress: Progress
}

export async function runAudit(opts: AuditOptions): Promise<AuditReport> {
  await ensureOutDir(opts.outDir)
  const [host, git] = await Promise.all([hostFingerprint(), gitState()])
  const data = encodeData(opts.data)
  const records: TargetRecord[] = []
  const runs = new Map<number, RunArtifacts[]>()
  const seedOutcomes = new Map<number, RunOutcome[]>()
  const configs = new Map<number, ProbeConfig>()
  let firstKnobs: Record<string, unknown> | null = null
  const hostKey = hostCacheKey(host)
  const cacheFor = (tag: string) => (opts.cache ? {cache: opts.cache, host: hostKey, tag} : undefined)

  const runTarget = async (i: number): Promise<void> => {
    const spec = opts.targets[i]!
    const index = i + 1
    const knobs = spec.deriveKnobs && firstKnobs ? spec.deriveKnobs(firstKnobs) : spec.knobs
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
    records[i] = record
    const config = {...defaultProbeConfig({file: 'data.safetensors', sha256: data.sha256}, opts.seed), knobs}
    config.train.epochs = opts.epochs
    config.trace.store_steps = opts.storeSteps
    configs.set(index, config)
    const done: RunArtifacts[] = []
    // Repeats with the base seed, then one run per extra seed.
    const plan = [
      ...Array.from({length: opts.repeats}, (_, k) => ({
        repeat: k + 1,
        seed: opts.seed,
        label: `repeat ${k + 1}/${opts.repeats}`,
        dir: `t${index}-r${k + 1}`,
      })),
      ...Array.from({length: opts.seeds - 1}, (_, k) => ({
        repeat: 0,
        seed: opts.seed + k + 1,
        label: `seed ${opts.seed + k + 1} (${k + 2}/${opts.seeds})`,
        dir: `t${index}-s${opts.seed + k + 1}`,
      })),
    ]
    for (const step of plan) {
      const r = step.repeat
      const what = `${name} · ${step.label}`
      const outDir = path.join(opts.outDir, step.dir)
      opts.progress.start(what)
      try {
        const runConfig = {...config, train: {...config.train, seed: step.seed}}
        const {artifacts, seconds, cached} = await withDevice(knobs.device, () =>
          trainRun({
            target: spec.target,
            config: runConfig,
            data: data.bytes,
            outDir,
            timeoutMs: opts.timeoutMs,
            label: `${name} ${r ? `r${r}` : `seed ${step.seed}`}`,
            context: {host, git},
            cache: cacheFor(r ? `r${r}` : 'seed'),
          }),
        )
        opts.progress.done(cached ? `${what} (cached)` : what, seconds)
        if (r === 0) {
          seedOutcomes.set(index, [...(seedOutcomes.get(index) ?? []), artifacts.outcome])
          continue
        }
        done.push(artifacts)
        record.runs.push({
          repeat: r,
          dir: outDir,
          seconds,
          cached,
          final: artifacts.outcome.final,
          epochs: artifacts.outcome.epochs,
          knobs_effective: artifacts.outcome.knobs_effective,
          timings: artifacts.outcome.timings,
        })
        if (index === 1 && r === 1) firstKnobs = artifacts.outcome.knobs_effective
      } catch (e) {
        if (!isReproError(e)) throw e
        // Known failure: record it and go on with the other targets; repeats would fail alike.
        // Name the numbered target: the same interpreter or image may appear twice.
        const line = `${name}: ${e.message} — ${e.hint}`
        opts.progress.fail(what, line)
        record.status = 'error'
        record.error = {message: e.message, hint: e.hint, line}
        break
      }
    }
    if (record.status === 'ok') {
      record.identity = await spec.target.identify().then(
        (id) => ({reference: id.reference, details: id.details}),
        () => null,
      )
      record.fingerprint = done[0]!.fingerprint
      record.trace_digest = traceDigest(done[0]!.trace)
      runs.set(index, done)
    }
  }
  // The demo's variant needs the first target's defaults; otherwise targets are independent.
  if (opts.targets.some((t) => t.deriveKnobs)) {
    for (let i = 0; i < opts.targets.length; i++) await runTarget(i)
  } else {
    await pool(opts.targets.length, Math.max(1, opts.jobs), runTarget)
  }

  const comparisons: PairRecord[] = []
  const repeatCmps = new Map<number, TraceComparison[]>()
  for (const rec of records) {
    const rs = runs.get(rec.index)
    if (!rs) continue
    for (let r = 1; r < rs.length; r++) {
      const {record, cmp} = comparePair('repeat', ref(rec, 1), rs[0]!, ref(rec, r + 1), rs[r]!)
      comparisons.push(record)
      repeatCmps.set(rec.index, [...(repeatCmps.get(rec.index) ?? []), cmp])
    }
  }
  const crossCmps: {record: PairRecord; cmp: TraceComparison}[] = []
  const base = records.find((t) => runs.has(t.index) && t.role === 'target')
  if (base) {
    for (const rec of records) {
      if (rec === base || !runs.has(rec.index)) continue
      const c = comparePair(
        rec.role === 'variant' ? 'variant' : 'cross',
        ref(base, 1),
        runs.get(base.index)![0]!,
        ref(rec, 1),
        runs.get(rec.index)![0]!,
      )
      comparisons.push(c.record)
      crossCmps.push(c)
    }
  }
  const attribution = await attribute({
    records,
    runs,
    seedOutcomes,
    seeds: Array.from({length: opts.seeds}, (_, k) => opts.seed + k),
    repeatCmps,
    crossCmps,
    configs,
    data: data.bytes,
    opts,
    cacheFor,
  })
  opts.progress.close()
  return {
    schema: REPORT_SCHEMA,
    tool: {name: 'repro', version: toolVersion()},
    created: new Date().toISOString(),
    command: opts.command,
    host,
    git,
    settings: {
      repeats: opts.repeats,
      seed: opts.seed,
      seeds: opts.seeds,
      tolerance: {fp32: DEFAULT_FP32_TOLERANCE, fp64: DEFAULT_FP64_TOLERANCE},
      epochs: opts.epochs,
      data_source: opts.data.source,
      data_sha256: data.sha256,
      out_dir: opts.outDir,
    },
    targets: records,
    comparisons,
    attribution,
    verdict: decideVerdict(records, comparisons, attribution),
  }
}

/** What about the host changes results: CPU (model, flags), kernel, architecture, GPUs. */
export function hostCacheKey(host: HostFingerprint): Record<string, unknown> {
  return {cpu: host.cpu.brand, flags: host.cpu.flags, kernel: host.os.kernel, arch: host.os.arch, gpus: host.gpus}
}

function ref(t: TargetRecord, repeat: number): PairRecord['a'] {
  return {target: t.index, repeat, name: `${t.name} r${repeat}`}
}

export function pair(
  role: PairRecord['role'],
  ta: TargetRecord,
  ra: number,
  a: RunArtifacts,
  tb: TargetRecord,
  rb: number,
  b: RunArtifacts,
): PairRecord {
  return comparePair(role, ref(ta, ra), a, ref(tb, rb), b).record
}

export function comparePair(
  role: PairRecord['role'],
  aRef: PairRecord['a'],
  a: RunArtifacts,
  bRef: PairRecord['b'],
  b: RunArtifacts,
): {record: PairRecord; cmp: TraceComparison} {
  const cmp = compareTraces(a.trace, a.values, b.trace, b.values, {fp32: DEFAULT_FP32_TOLERANCE, fp64: DEFAULT_FP64_TOLERANCE})
  const fp = diffFingerprints(a.fingerprint, b.fingerprint)
  const accA = a.outcome.final.val_accuracy
  const accB = b.outcome.final.val_accuracy
  const lossA = a.outcome.final.val_loss
  const lossB = b.outcome.final.val_loss
  const changes = fp.rows.filter((row) => row.changed)
  const record: PairRecord = {
    role,
    a: aRef,
    b: bRef,
    divergence: summarizeDivergence(cmp),
    outcome: {
      val_accuracy_a: accA,
      val_accuracy_b: accB,
      accuracy_delta: accA !== null && accB !== null ? accB - accA : null,
      val_loss_delta: lossA !== null && lossB !== null ? lossB - lossA : null,
    },
    fingerprint_changes: changes,
    fingerprint_changed: changes.length,
  }
  return {record, cmp}
}
