// Explaining drift with experiments: the noise floor of each target, seed statistics, zoom
// reruns for unstored first divergences, and counterfactual reruns that align one runtime knob
// at a time (then all together) to see whether the first divergence disappears or moves.

import path from 'node:path'
import {
  classifyAgainstNoise,
  classifyExperiment,
  knobDifferences,
  noiseFloorOf,
  rankSuspects,
  seedVariance,
  whereItStarts,
  type KnobDifference,
} from '../core/attribute.js'
import type {ProbeConfig} from '../core/config.js'
import {summarizeDivergence, type Attribution, type Experiment, type PairRecord, type TargetRecord} from '../core/report.js'
import {compareTraces, entryPhase, type TraceComparison} from '../core/trace-compare.js'
import {
  DEFAULT_FP32_TOLERANCE,
  DEFAULT_FP64_TOLERANCE,
  type Fingerprint,
  type Knobs,
  type RunArtifacts,
  type RunOutcome,
  type StepId,
} from '../core/types.js'
import {isReproError} from '../errors.js'
import type {AuditOptions} from './audit.js'
import {trainRun, type ProbeRunRequest} from './execute.js'

const TOL = {fp32: DEFAULT_FP32_TOLERANCE, fp64: DEFAULT_FP64_TOLERANCE}

interface AttributeInput {
  records: TargetRecord[]
  runs: Map<number, RunArtifacts[]>
  seedOutcomes: Map<number, RunOutcome[]>
  seeds: number[]
  repeatCmps: Map<number, TraceComparison[]>
  crossCmps: {record: PairRecord; cmp: TraceComparison}[]
  configs: Map<number, ProbeConfig>
  data: Buffer
  opts: AuditOptions
  cacheFor: (tag: string) => ProbeRunRequest['cache']
}

function envOf(fp: Fingerprint): Record<string, string> {
  const env = fp['env']
  const out: Record<string, string> = {}
  if (env && typeof env === 'object' && !Array.isArray(env)) for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v
  return out
}

/** Knobs for rerunning a target with some knobs set to the reference's values. */
function alignedKnobs(knobs: Knobs, diffs: KnobDifference[]): Knobs {
  const next: Knobs = {...knobs, env: {...knobs.env}}
  for (const d of diffs) {
    if (d.name.startsWith('env.')) next.env[d.name.slice(4)] = String(d.a)
    else (next as unknown as Record<string, unknown>)[d.name] = d.a
  }
  return next
}

export async function attribute(input: AttributeInput): Promise<Attribution | undefined> {
  const {records, runs, opts} = input
  const noise_floor = records
    .filter((r) => input.repeatCmps.has(r.index))
    .map((r) => noiseFloorOf(r.index, r.name, input.repeatCmps.get(r.index)!))
  for (const {record, cmp} of input.crossCmps) {
    const floors = noise_floor.filter((f) => (f.target === record.a.target || f.target === record.b.target) && !f.bitwise)
    if (floors.length > 0) record.noise = classifyAgainstNoise(cmp, floors)
  }

  let seeds: Attribution['seeds'] = null
  if (input.seeds.length > 1) {
    const perTarget = records
      .filter((r) => runs.has(r.index))
      .map((r) => {
        const outcomes = [runs.get(r.index)![0]!.outcome, ...(input.seedOutcomes.get(r.index) ?? [])]
        return {
          target: r.index,
          name: r.name,
          accuracies: outcomes.flatMap((o) => (o.final.val_accuracy === null ? [] : [o.final.val_accuracy])),
          losses: outcomes.flatMap((o) => (o.final.val_loss === null ? [] : [o.final.val_loss])),
        }
      })
    seeds = seedVariance(input.seeds, perTarget)
  }

  const experiments: Experiment[] = []
  let budget = opts.explainBudget
  const drifting = input.crossCmps.filter(
    ({record}) => !record.divergence.bitwise_identical && (record.noise === undefined || record.noise.beyond > 0),
  )
  let where: Attribution['where'] = null
  const changes = drifting[0]?.record.fingerprint_changes ?? []

  for (const {record, cmp} of drifting) {
    const a = runs.get(record.a.target)![0]!
    const b = runs.get(record.b.target)![0]!
    where ??= whereItStarts(cmp.first_divergence, b.outcome.module_types)
    if (budget <= 0) continue
    const target = records.find((r) => r.index === record.b.target)!
    const spec = opts.targets[target.index - 1]!
    const config = input.configs.get(target.index)!

    // Zoom: the first divergence happened at a step without stored values — rerun both sides
    // storing that step, so the report quantifies it layer by layer.
    const fd = cmp.first_divergence
    const stored = (run: RunArtifacts) => run.trace.steps.find((s) => s.step === fd?.step)?.stored === true
    if (fd && fd.step !== 'init' && !(stored(a) && stored(b)) && budget >= 2) {
      const zoomed = await zoom(input, record, fd.step)
      budget -= 2
      if (zoomed) record.divergence = summarizeDivergence(zoomed)
    }

    const diffs = knobDifferences(a.outcome.knobs_effective, b.outcome.knobs_effective, envOf(a.fingerprint), envOf(b.fingerprint))
    const trials = diffs.map((d) => [d])
    if (diffs.length > 1) trials.push(diffs)
    for (const trial of trials) {
      if (budget <= 0) break
      budget--
      const id = `e${experiments.length + 1}`
      const knobs = alignedKnobs(config.knobs, trial)
      const label = `${target.name} with ${trial.map((d) => `${d.name}=${String(d.a)}`).join(', ')}`
      const base: Omit<Experiment, 'outcome' | 'first_divergence_after' | 'note'> = {
        id,
        knobs: trial.map((d) => ({name: d.name, from: d.b, to: d.a})),
        target: record.b.target,
        against: record.a.target,
        first_divergence_before: fd ? {step: fd.step, entry: fd.entry} : null,
      }
      opts.progress.start(`explain ${id}: ${label}`)
      try {
        const {artifacts, seconds} = await trainRun({
          target: spec.target,
          config: {...config, knobs},
          data: input.data,
          outDir: path.join(opts.outDir, `${id}-t${target.index}`),
          timeoutMs: opts.timeoutMs,
          label,
          cache: input.cacheFor('r1'),
        })
        opts.progress.done(`explain ${id}: ${label}`, seconds)
        const after = compareTraces(a.trace, a.values, artifacts.trace, artifacts.values, TOL)
        const outcome = classifyExperiment(fd, after)
        const afd = after.first_divergence
        experiments.push({
          ...base,
          outcome,
          first_divergence_after: afd ? {step: afd.step, entry: afd.entry} : null,
          note:
            outcome === 'disappears'
              ? 'traces bitwise identical after aligning'
              : afd
                ? `first divergence now at step ${afd.step}, ${afd.entry}`
                : 'diverges',
        })
      } catch (e) {
        if (!isReproError(e)) throw e
        opts.progress.fail(`explain ${id}`, e.oneLine())
        experiments.push({...base, outcome: 'failed', first_divergence_after: null, note: e.oneLine()})
      }
    }
  }

  if (noise_floor.length === 0 && !seeds && drifting.length === 0) return undefined
  // The residual: where the first pair still diverges with every knob aligned (the combined
  // rerun, or the only one), if aligning moved it.
  const firstPair = drifting[0]?.record
  const forPair = experiments.filter(
    (e) => firstPair && e.target === firstPair.b.target && e.against === firstPair.a.target && e.outcome === 'moves-later',
  )
  const widest = forPair.sort((x, y) => y.knobs.length - x.knobs.length)[0]
  const residualAt = widest?.first_divergence_after
  const residual =
    residualAt && firstPair
      ? whereItStarts(
          {step: residualAt.step as StepId, entry: residualAt.entry, index_in_step: 0, kind: 'value', phase: entryPhase(residualAt.entry)},
          runs.get(firstPair.b.target)![0]!.outcome.module_types,
        )
      : null
  const suspects = rankSuspects({
    experiments,
    where,
    residual,
    fingerprintChanges: changes,
    noiseFloors: noise_floor,
    seeds,
    drift: drifting.length > 0,
  })
  return {noise_floor, seeds, experiments, where, residual, suspects}
}

async function zoom(input: AttributeInput, record: PairRecord, step: number): Promise<TraceComparison | null> {
  const {opts} = input
  const out: RunArtifacts[] = []
  for (const t of [record.a.target, record.b.target]) {
    const config = input.configs.get(t)!
    const spec = opts.targets[t - 1]!
    const what = `zoom: #${t} storing step ${step}`
    opts.progress.start(what)
    try {
      const {artifacts, seconds} = await trainRun({
        target: spec.target,
        config: {...config, trace: {...config.trace, store_steps: [step]}},
        data: input.data,
        outDir: path.join(opts.outDir, `zoom-s${step}-t${t}`),
        timeoutMs: opts.timeoutMs,
        label: what,
        cache: input.cacheFor('r1'),
      })
      opts.progress.done(what, seconds)
      out.push(artifacts)
    } catch (e) {
      if (!isReproError(e)) throw e
      opts.progress.fail(what, e.oneLine())
      return null
    }
  }
  return compareTraces(out[0]!.trace, out[0]!.values, out[1]!.trace, out[1]!.values, TOL)
}
