// The attribute stage: the noise floor of each target, seed statistics, zoom reruns for
// unstored first divergences, and counterfactual reruns that align one differing knob at a
// time (then all together) to see whether the first divergence disappears or moves. The
// judgements are pure (core/attribute.ts); this file only decides which reruns to spend the
// budget on and runs them.

import {
  alignedKnobs,
  classifyCrossPairs,
  experimentRecord,
  noiseFloors,
  plannedTrials,
  rankSuspects,
  residualWhere,
  runKnobDifferences,
  seedStatistics,
  whereItStarts,
} from '../core/attribute.js'
import {unexercisedBy} from '../core/knobs.js'
import type {ComparedPair, Comparisons} from '../core/pairs.js'
import {TOLERANCE} from '../core/pairs.js'
import {summarizeDivergence, type Attribution, type Experiment} from '../core/report.js'
import {compareTraces, type TraceComparison} from '../core/trace-compare.js'
import type {RunArtifacts} from '../core/types.js'
import {isReproError} from '../errors.js'
import type {Collected, Rerunner} from './audit-types.js'

export interface AttributeInput {
  collected: Collected
  compared: Comparisons
  seeds: number[]
  /** most reruns to spend (zoom counts two, each counterfactual one) */
  budget: number
  rerunner: Rerunner
}

export async function attribute(input: AttributeInput): Promise<Attribution | undefined> {
  const {collected, compared} = input
  const noise_floor = noiseFloors(collected.records, compared.repeats)
  classifyCrossPairs(compared.cross, noise_floor)
  const seeds = seedStatistics(collected.records, collected.runs, collected.seedOutcomes, input.seeds)
  const drifting = compared.cross.filter(
    ({record}) => !record.divergence.bitwise_identical && (record.noise === undefined || record.noise.beyond > 0),
  )
  const unexercised = unexercisedKnobs(compared.cross, collected)
  if (noise_floor.length === 0 && !seeds && drifting.length === 0 && unexercised.length === 0) return undefined

  const experiments: Experiment[] = []
  let budget = input.budget
  let where: Attribution['where'] = null
  for (const pair of drifting) {
    const b = first(collected, pair.record.b.target)
    where ??= whereItStarts(pair.cmp.first_divergence, b.outcome.module_types)
    if (budget <= 0) continue
    budget -= await zoomIfUnstored(input, pair, budget)
    budget -= await counterfactuals(input, pair, budget, experiments)
  }
  const firstPair = drifting[0]?.record
  const residual = residualWhere(experiments, firstPair, firstPair ? first(collected, firstPair.b.target).outcome.module_types : {})
  const suspects = rankSuspects({
    experiments,
    where,
    residual,
    fingerprintChanges: firstPair?.fingerprint_changes ?? [],
    noiseFloors: noise_floor,
    seeds,
    drift: drifting.length > 0,
    workload: firstPair ? first(collected, firstPair.b.target).outcome.workload : null,
  })
  return {noise_floor, seeds, experiments, where, residual, suspects, ...(unexercised.length ? {unexercised} : {})}
}

/** Knobs that differ between targets but cannot matter to this workload on this device. */
function unexercisedKnobs(cross: ComparedPair[], collected: Collected): NonNullable<Attribution['unexercised']> {
  const out: NonNullable<Attribution['unexercised']> = []
  for (const pair of cross) {
    const a = first(collected, pair.record.a.target)
    const b = first(collected, pair.record.b.target)
    const overridden = new Set([...(a.outcome.knobs_overridden ?? []), ...(b.outcome.knobs_overridden ?? [])])
    for (const d of runKnobDifferences(a, b)) {
      const note = overridden.has(d.name)
        ? 'overridden: the script sets it itself, so it is not aligned by a rerun'
        : unexercisedBy(d.name, a.outcome.workload, String(b.outcome.knobs_effective['device'] ?? 'cpu'))
      if (note && !out.some((u) => u.name === d.name)) out.push({name: d.name, a: String(d.a), b: String(d.b), note})
    }
  }
  return out
}

function first(collected: Collected, target: number): RunArtifacts {
  return collected.runs.get(target)![0]!
}

/**
 * Zoom: the first divergence happened at a step without stored values — rerun both sides
 * storing that step, so the report quantifies it layer by layer. Returns the reruns spent.
 */
async function zoomIfUnstored(input: AttributeInput, pair: ComparedPair, budget: number): Promise<number> {
  const fd = pair.cmp.first_divergence
  const a = first(input.collected, pair.record.a.target)
  const b = first(input.collected, pair.record.b.target)
  const stored = (run: RunArtifacts) => run.trace.steps.find((s) => s.step === fd?.step)?.stored === true
  if (!fd || fd.step === 'init' || (stored(a) && stored(b)) || budget < 2) return 0
  const step = fd.step
  const zoomed: RunArtifacts[] = []
  for (const t of [pair.record.a.target, pair.record.b.target]) {
    const what = `zoom: #${t} storing step ${step}`
    const run = await attempt(input, what, () => input.rerunner.rerun(t, {storeSteps: [step]}, what, `zoom-s${step}-t${t}`))
    if (typeof run === 'string') return 2
    zoomed.push(run)
  }
  pair.record.divergence = summarizeDivergence(
    compareTraces(zoomed[0]!.trace, zoomed[0]!.values, zoomed[1]!.trace, zoomed[1]!.values, TOLERANCE),
  )
  return 2
}

/** Rerun the pair's second target with each differing knob aligned, then all of them. Returns the reruns spent. */
async function counterfactuals(input: AttributeInput, pair: ComparedPair, budget: number, experiments: Experiment[]): Promise<number> {
  const {collected} = input
  const a = first(collected, pair.record.a.target)
  const b = first(collected, pair.record.b.target)
  const target = collected.records.find((r) => r.index === pair.record.b.target)!
  const knobs = collected.configs.get(target.index)!.knobs
  let spent = 0
  // a knob this workload or device does not exercise cannot explain anything, and one a user's
  // script sets itself cannot be aligned from outside: no rerun for either
  const device = String(b.outcome.knobs_effective['device'] ?? 'cpu')
  const overridden = new Set([...(a.outcome.knobs_overridden ?? []), ...(b.outcome.knobs_overridden ?? [])])
  const exercised = runKnobDifferences(a, b).filter((d) => !overridden.has(d.name) && !unexercisedBy(d.name, b.outcome.workload, device))
  for (const trial of plannedTrials(exercised)) {
    if (spent >= budget) break
    spent++
    const id = `e${experiments.length + 1}`
    const label = `${target.name} with ${trial.map((d) => (d.a === null ? `${d.name} unset` : `${d.name}=${String(d.a)}`)).join(', ')}`
    const run = await attempt(input, `explain ${id}: ${label}`, () =>
      input.rerunner.rerun(target.index, {knobs: alignedKnobs(knobs, trial)}, label, `${id}-t${target.index}`),
    )
    const after: TraceComparison | {failed: string} =
      typeof run === 'string' ? {failed: run} : compareTraces(a.trace, a.values, run.trace, run.values, TOLERANCE)
    experiments.push(experimentRecord(id, trial, pair.record, pair.cmp.first_divergence, after))
  }
  return spent
}

/** One rerun with progress; a known failure comes back as its one-line error. */
async function attempt(
  input: AttributeInput,
  what: string,
  run: () => Promise<{artifacts: RunArtifacts; seconds: number}>,
): Promise<RunArtifacts | string> {
  const {progress} = input.rerunner
  progress.start(what)
  try {
    const {artifacts, seconds} = await run()
    progress.done(what, seconds)
    return artifacts
  } catch (e) {
    if (!isReproError(e)) throw e
    progress.fail(what, e.oneLine())
    return e.oneLine()
  }
}
