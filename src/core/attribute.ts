// Attribution: from the noise floor, seed statistics and counterfactual reruns to a ranked
// list of suspects, each with the experiment (or observation) that supports it. Pure.

import {isEnvKnob, KNOBS} from './knobs.js'
import {summarize, welch} from './outcome.js'
import type {Attribution, Experiment, NoiseFloor, PairRecord, SeedVariance, TargetRecord} from './report.js'
import {entryPhase, type FirstDivergence, type TraceComparison} from './trace-compare.js'
import type {Fingerprint, Knobs, RunArtifacts, RunOutcome, StepId} from './types.js'

/** Runtime knobs a counterfactual rerun can align (names as in run.json knobs_effective). */
export const RUNTIME_KNOBS: readonly string[] = KNOBS.filter((k) => k.alignable).map((k) => k.name)

export interface KnobDifference {
  /** knob name, or env.NAME */
  name: string
  a: unknown
  b: unknown
}

/**
 * Knobs in effect that differ between two runs. A runtime knob is aligned by rerunning b with
 * a's value; an environment variable b has and a lacks (an image's ENV) by unsetting it in b
 * (UNSET_ENV), so it is a difference with a: null.
 */
export function knobDifferences(
  aKnobs: Record<string, unknown>,
  bKnobs: Record<string, unknown>,
  aEnv: Record<string, string>,
  bEnv: Record<string, string>,
): KnobDifference[] {
  const out: KnobDifference[] = []
  for (const k of RUNTIME_KNOBS) {
    const a = aKnobs[k]
    const b = bKnobs[k]
    if (a !== undefined && a !== null && JSON.stringify(a) !== JSON.stringify(b)) out.push({name: k, a, b})
  }
  const names = [...new Set([...Object.keys(aEnv), ...Object.keys(bEnv)])].filter(isEnvKnob).sort()
  for (const n of names) {
    if (aEnv[n] !== bEnv[n]) out.push({name: `env.${n}`, a: aEnv[n] ?? null, b: bEnv[n] ?? null})
  }
  return out
}

function stepRank(step: StepId): number {
  return step === 'init' ? -1 : step
}

/** True when divergence `x` happens strictly later in execution order than `y`. */
export function isLater(x: FirstDivergence, y: FirstDivergence): boolean {
  const sx = stepRank(x.step)
  const sy = stepRank(y.step)
  return sx !== sy ? sx > sy : x.index_in_step > y.index_in_step
}

export function classifyExperiment(before: FirstDivergence | null, after: TraceComparison): Experiment['outcome'] {
  if (after.bitwise_identical) return 'disappears'
  if (before && after.first_divergence && isLater(after.first_divergence, before)) return 'moves-later'
  return 'stays'
}

/** Repeats inside one target: bitwise, or the largest difference per entry between repeats. */
export function noiseFloorOf(target: number, name: string, repeats: TraceComparison[]): NoiseFloor {
  const spread = new Map<string, number>()
  for (const cmp of repeats) {
    for (const d of cmp.differing) {
      // Differing without stored values: the entry is noisy but its magnitude is unknown.
      const m = d.metrics ? d.metrics.max_abs : Infinity
      spread.set(d.name, Math.max(spread.get(d.name) ?? 0, m))
    }
  }
  return {
    target,
    name,
    repeats: repeats.length + 1,
    bitwise: repeats.every((c) => c.bitwise_identical),
    differing_entries: Math.max(0, ...repeats.map((c) => c.counts.differing)),
    spread: [...spread.entries()].map(([n, max_abs]) => ({name: n, max_abs})).sort((x, y) => (x.name < y.name ? -1 : 1)),
  }
}

/**
 * Classify each differing entry of a cross-target comparison against the noise floors of the
 * two targets: within when that entry also varies between repeats by at least as much.
 */
export function classifyAgainstNoise(cross: TraceComparison, floors: NoiseFloor[]): {within: number; beyond: number} {
  const spread = new Map<string, number>()
  for (const f of floors) for (const s of f.spread) spread.set(s.name, Math.max(spread.get(s.name) ?? 0, s.max_abs))
  let within = 0
  let beyond = 0
  for (const d of cross.differing) {
    const s = spread.get(d.name)
    if (s === undefined) beyond++
    else if (!d.metrics || d.metrics.max_abs <= s) within++
    else beyond++
  }
  return {within, beyond}
}

/** The module an entry belongs to: `fwd/mlp.1` → mlp.1, `grad/mlp.0.weight` → mlp.0. */
export function entryModule(entry: string): string | null {
  const m = /^(fwd|grad|param|buffer|opt|replay\/fwd)\/(.+)$/.exec(entry)
  if (!m) return null
  let rest = m[2]!.replace(/#\d+$/, '')
  if (m[1] === 'fwd' || m[1] === 'replay/fwd') return rest
  // opt/<param>.<state>: the parameter's module
  if (m[1] === 'opt') rest = rest.slice(0, Math.max(0, rest.lastIndexOf('.')))
  const dot = rest.lastIndexOf('.')
  return dot > 0 ? rest.slice(0, dot) : rest
}

export function whereItStarts(
  fd: FirstDivergence | null,
  moduleTypes: Record<string, string>,
): {phase: string; module_type: string | null; step: string | number; entry: string} | null {
  if (!fd) return null
  let mod = entryModule(fd.entry)
  // a tuple output's element (fwd/lstm.1.0: an LSTM's h_n) belongs to the module itself
  while (mod && !(mod in moduleTypes) && /\.\d+$/.test(mod)) mod = mod.replace(/\.\d+$/, '')
  return {phase: fd.phase, module_type: mod ? (moduleTypes[mod] ?? null) : null, step: fd.step, entry: fd.entry}
}

export function seedVariance(
  seeds: number[],
  perTarget: {target: number; name: string; accuracies: number[]; losses: number[]}[],
  metric: 'val_accuracy' | 'val_rmse' = 'val_accuracy',
): SeedVariance {
  const stats = perTarget.map((t) => {
    const acc = summarize(t.accuracies)
    const loss = summarize(t.losses)
    return {
      target: t.target,
      name: t.name,
      accuracy: {n: acc.n, mean: acc.mean, sd: acc.sd},
      loss: {n: loss.n, mean: loss.mean, sd: loss.sd},
    }
  })
  const [first, ...rest] = perTarget
  // accuracy differences in percentage points; an RMSE in the data's own units
  const what = metric === 'val_rmse' ? 'RMSE' : 'accuracy'
  const fmt = (x: number) =>
    metric === 'val_rmse' ? `${x >= 0 ? '+' : ''}${x.toPrecision(3)}` : `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)} pp`
  const differences = first
    ? rest.map((t) => {
        const w = welch(first.accuracies, t.accuracies)
        let sentence: string
        if (w.diff === null) sentence = `not enough runs to compare ${what}`
        else if (!w.ci95) sentence = `${what} differs by ${fmt(w.diff)}; more seeds are needed for an interval`
        else {
          const ci = `95 % CI ${fmt(w.ci95[0])} … ${fmt(w.ci95[1])}, ${t.accuracies.length} vs ${first.accuracies.length} seeds`
          sentence = w.significant
            ? `${what} differs by ${fmt(w.diff)} (${ci}): bigger than the seed-to-seed spread`
            : `${what} differs by ${fmt(w.diff)} (${ci}): within seed-to-seed variance`
        }
        return {a: first.target, b: t.target, diff: w.diff, ci95: w.ci95, significant: w.significant, sentence}
      })
    : []
  return metric === 'val_rmse' ? {seeds, metric, per_target: stats, differences} : {seeds, per_target: stats, differences}
}

export {rankSuspects, type RankInput} from './suspects.js'

/** Allowlisted environment variables recorded in a fingerprint (`env`), as strings. */
export function envOf(fp: Fingerprint): Record<string, string> {
  const env = fp['env']
  const out: Record<string, string> = {}
  if (env && typeof env === 'object' && !Array.isArray(env)) for (const [k, v] of Object.entries(env)) if (typeof v === 'string') out[k] = v
  return out
}

/** The knob differences between two runs' effective knobs and recorded environments. */
export function runKnobDifferences(a: RunArtifacts, b: RunArtifacts): KnobDifference[] {
  return knobDifferences(a.outcome.knobs_effective, b.outcome.knobs_effective, envOf(a.fingerprint), envOf(b.fingerprint))
}

/** Counterfactual trials: each differing knob alone, then all of them together. */
export function plannedTrials(diffs: KnobDifference[]): KnobDifference[][] {
  const trials = diffs.map((d) => [d])
  if (diffs.length > 1) trials.push(diffs)
  return trials
}

/**
 * The environment variable that carries the names the probe unsets before torch loads
 * (comma-separated): how a rerun removes a variable an image's ENV sets, which no engine flag
 * can. The probe removes it too once read.
 */
export const UNSET_ENV = 'REPRO_UNSET_ENV'

/** Knobs for rerunning a target with some knobs set to the reference's values (or unset where it has none). */
export function alignedKnobs(knobs: Knobs, diffs: KnobDifference[]): Knobs {
  const next: Knobs = {...knobs, env: {...knobs.env}}
  const unset = new Set((next.env[UNSET_ENV] ?? '').split(',').filter(Boolean))
  for (const d of diffs) {
    if (d.name.startsWith('env.')) {
      const name = d.name.slice(4)
      if (d.a === null || d.a === undefined) {
        delete next.env[name]
        unset.add(name)
      } else next.env[name] = String(d.a)
    } else (next as unknown as Record<string, unknown>)[d.name] = d.a
  }
  if (unset.size) next.env[UNSET_ENV] = [...unset].sort().join(',')
  return next
}

/** The record of one counterfactual rerun, from the comparison made after it. */
export function experimentRecord(
  id: string,
  trial: KnobDifference[],
  pair: PairRecord,
  before: FirstDivergence | null,
  after: TraceComparison | {failed: string},
): Experiment {
  const base = {
    id,
    knobs: trial.map((d) => ({name: d.name, from: d.b, to: d.a})),
    target: pair.b.target,
    against: pair.a.target,
    first_divergence_before: before ? {step: before.step, entry: before.entry} : null,
  }
  if ('failed' in after) return {...base, outcome: 'failed', first_divergence_after: null, note: after.failed}
  const outcome = classifyExperiment(before, after)
  const afd = after.first_divergence
  const note =
    outcome === 'disappears'
      ? 'traces bitwise identical after aligning'
      : afd
        ? `first divergence now at step ${afd.step}, ${afd.entry}`
        : 'diverges'
  return {...base, outcome, first_divergence_after: afd ? {step: afd.step, entry: afd.entry} : null, note}
}

/** Noise floors of the targets with repeats; cross pairs then say how much drift is within noise. */
export function noiseFloors(records: TargetRecord[], repeats: ReadonlyMap<number, TraceComparison[]>): NoiseFloor[] {
  return records.filter((r) => repeats.has(r.index)).map((r) => noiseFloorOf(r.index, r.name, repeats.get(r.index)!))
}

export function classifyCrossPairs(cross: {record: PairRecord; cmp: TraceComparison}[], floors: NoiseFloor[]): void {
  for (const {record, cmp} of cross) {
    const relevant = floors.filter((f) => (f.target === record.a.target || f.target === record.b.target) && !f.bitwise)
    if (relevant.length > 0) record.noise = classifyAgainstNoise(cmp, relevant)
  }
}

/** Seed statistics over each target's base-seed run and its extra-seed runs (null with one seed). */
export function seedStatistics(
  records: TargetRecord[],
  runs: ReadonlyMap<number, RunArtifacts[]>,
  seedOutcomes: ReadonlyMap<number, RunOutcome[]>,
  seeds: number[],
): SeedVariance | null {
  if (seeds.length <= 1) return null
  const finite = (xs: (number | null | undefined)[]) => xs.filter((x): x is number => x !== null && x !== undefined)
  const metric = [...runs.values()][0]?.[0]?.outcome.outcome_metric === 'val_rmse' ? 'val_rmse' : 'val_accuracy'
  const perTarget = records
    .filter((r) => runs.has(r.index))
    .map((r) => {
      const outcomes = [runs.get(r.index)![0]!.outcome, ...(seedOutcomes.get(r.index) ?? [])]
      return {
        target: r.index,
        name: r.name,
        accuracies: finite(outcomes.map((o) => (metric === 'val_rmse' ? o.final.val_rmse : o.final.val_accuracy))),
        losses: finite(outcomes.map((o) => o.final.val_loss)),
      }
    })
  return seedVariance(seeds, perTarget, metric)
}

/**
 * The residual: where the pair still diverges with every differing knob aligned (the widest
 * rerun that moved the divergence later), located by phase and module type.
 */
export function residualWhere(
  experiments: Experiment[],
  pair: PairRecord | undefined,
  moduleTypes: Record<string, string>,
): Attribution['residual'] {
  if (!pair) return null
  const moved = experiments.filter((e) => e.target === pair.b.target && e.against === pair.a.target && e.outcome === 'moves-later')
  const at = moved.sort((x, y) => y.knobs.length - x.knobs.length)[0]?.first_divergence_after
  if (!at) return null
  const fd: FirstDivergence = {step: at.step as StepId, entry: at.entry, index_in_step: 0, kind: 'value', phase: entryPhase(at.entry)}
  return whereItStarts(fd, moduleTypes)
}
