// Ranking suspects: a table of small named rules, each turning evidence (experiments, noise
// floors, seed statistics, where the divergence starts, fingerprint changes) into scored
// suspects, with named scores. A suspect an experiment confirmed always outranks an inferred one.

import type {FingerprintRow} from './fingerprint-diff.js'
import {explainKnob, explainPath, refinedChange, type KnownChange} from './knowledge.js'
import {onednnRanNothing, TOGGLE_SUSPECT} from './replay.js'
import type {Experiment, NoiseFloor, SeedVariance, Suspect} from './report.js'

type Where = {phase: string; module_type: string | null; step: string | number; entry: string}

export interface RankInput {
  experiments: Experiment[]
  where: Where | null
  /** where the divergence starts once every differing knob is aligned (if they explain part) */
  residual?: Where | null
  fingerprintChanges: FingerprintRow[]
  noiseFloors: NoiseFloor[]
  seeds: SeedVariance | null
  /** the cross comparison being explained drifts at all */
  drift: boolean
  /** the built-in workload that drifts (null: a user's script): library changes it cannot reach are not named */
  workload?: string | null
}

/** The scores rules give; experiments (≥ 60) rank above inference (30 + relevance ≤ 55). */
export const SCORE = {
  knobRemovesDrift: 100,
  nondeterminismInsideTarget: 90,
  replayLocalizesDrift: 80,
  knobsTogetherRemoveDrift: 70,
  knobMovesDriftLater: 60,
  seedVarianceCoversGap: 50,
  libraryInferred: 30,
} as const

/**
 * How well a library's kind of code fits where the divergence starts, first match wins:
 * Linear layers run through BLAS / oneDNN; normalization through ATen and oneDNN; embeddings
 * (gather / index_add backward) through ATen; the optimizer update is framework code
 * (torch.optim), not a math library.
 */
export const LIBRARY_RELEVANCE: {module?: RegExp; phase?: string; libraries: string[]; bonus: number}[] = [
  {module: /Linear/, libraries: ['blas-library', 'onednn-version'], bonus: 20},
  // convolutions: oneDNN on the CPU, cuDNN on the GPU; recurrent layers: cuDNN RNN on the GPU
  {module: /Conv/, libraries: ['onednn-version', 'onednn-isa', 'cuda-libraries', 'cpu-capability'], bonus: 20},
  {module: /LSTM|GRU|RNN/, libraries: ['cuda-libraries', 'framework-release'], bonus: 20},
  {module: /BatchNorm|LayerNorm/, libraries: ['framework-release', 'onednn-version'], bonus: 20},
  {module: /Embedding/, libraries: ['framework-release'], bonus: 20},
  {phase: 'update', libraries: ['framework-release'], bonus: 25},
  {phase: 'loss', libraries: ['framework-release'], bonus: 10},
]

interface Scored {
  score: number
  s: Omit<Suspect, 'rank'>
}

interface SuspectRule {
  name: string
  suspects(input: RankInput): Scored[]
}

const fmt = (v: unknown) => (v === null || v === undefined ? 'unset' : typeof v === 'string' ? v : JSON.stringify(v))
const explained = (kb: KnownChange | null) => ({explanation: kb?.text ?? null, source: kb?.source ?? null})
const singles = (input: RankInput) => input.experiments.filter((e) => e.knobs.length === 1 && e.outcome !== 'failed')
const combined = (input: RankInput) => input.experiments.find((e) => e.knobs.length > 1 && e.outcome !== 'failed')
const explainedByOne = (input: RankInput) => singles(input).some((e) => e.outcome === 'disappears')
const knobsExplainAll = (input: RankInput) => explainedByOne(input) || combined(input)?.outcome === 'disappears'

function knobSuspect(e: Experiment, score: number, confidence: Suspect['confidence'], evidence: string, workload?: string | null): Scored {
  const k = e.knobs[0]!
  return {
    score,
    s: {kind: 'knob', name: k.name, a: fmt(k.to), b: fmt(k.from), confidence, evidence, ...explained(explainKnob(k.name, workload))},
  }
}

const describe = (e: Experiment) =>
  e.knobs[0]!.to === null
    ? `${e.knobs[0]!.name} unset (as in #${e.against})`
    : `${e.knobs[0]!.name}=${fmt(e.knobs[0]!.to)} (the value in #${e.against})`

/**
 * What an op replay that cross-checked a knob (its alignment replayed as a toggle) says about it: the
 * replay agrees when that toggle makes the second target's replay bitwise identical to the first's.
 */
function replayAgrees(input: RankInput, knob: string): string {
  for (const e of input.experiments.filter((x) => x.kind === 'replay' && x.outcome === 'localized')) {
    const t = (e.toggles ?? []).find((x) => x.toggle.startsWith(`${knob} `) || x.toggle.startsWith(`${knob}=`))
    if (!t) continue
    const mkldnn = (e.toggles ?? []).find((x) => x.toggle.startsWith('mkldnn off in both'))
    const also = mkldnn?.outcome === 'bitwise' ? '; with oneDNN off in both targets the replays are identical too' : ''
    return t.outcome === 'bitwise'
      ? `; the op replay agrees: ${e.id}'s ${e.op ?? 'op'} differs on identical inputs and is bitwise identical replayed with ${t.toggle}${also}`
      : `; but the op replay does not agree: ${e.id}'s ${e.op ?? 'op'} replayed with ${t.toggle} is ${t.outcome}`
  }
  return ''
}

export const SUSPECT_RULES: SuspectRule[] = [
  {
    name: 'repeats inside a target differ: nondeterminism',
    suspects: (input) =>
      input.noiseFloors
        .filter((f) => !f.bitwise)
        .map((f) => ({
          score: SCORE.nondeterminismInsideTarget,
          s: {
            kind: 'nondeterminism',
            name: `nondeterminism inside ${f.name}`,
            a: null,
            b: null,
            confidence: 'high',
            evidence: `${f.repeats} repeats of ${f.name} differ from each other in ${f.differing_entries} trace entries, so that spread is its noise floor`,
            ...explained(explainKnob('deterministic')),
          },
        })),
  },
  {
    name: 'aligning one knob makes the traces identical',
    suspects: (input) =>
      singles(input)
        .filter((e) => e.outcome === 'disappears')
        .map((e) =>
          knobSuspect(
            e,
            SCORE.knobRemovesDrift,
            'high',
            `rerunning #${e.target} with ${describe(e)} makes its whole trace bitwise identical to #${e.against}${replayAgrees(input, e.knobs[0]!.name)}`,
            input.workload,
          ),
        ),
  },
  {
    name: 'aligning one knob moves the first divergence later',
    suspects: (input) =>
      singles(input)
        .filter((e) => e.outcome === 'moves-later')
        .map((e) => {
          const to = e.first_divergence_after ? `step ${e.first_divergence_after.step}, ${e.first_divergence_after.entry}` : 'later'
          const evidence = `rerunning #${e.target} with ${describe(e)} moves the first divergence later (to ${to}): it explains part of the drift`
          return knobSuspect(e, SCORE.knobMovesDriftLater, 'medium', evidence, input.workload)
        }),
  },
  {
    name: 'only aligning the knobs together makes the traces identical',
    suspects: (input) => {
      const c = combined(input)
      if (c?.outcome !== 'disappears' || explainedByOne(input)) return []
      const evidence = `only aligning ${c.knobs.map((x) => x.name).join(' + ')} together makes the traces bitwise identical`
      return c.knobs.map((k) => ({
        score: SCORE.knobsTogetherRemoveDrift,
        s: {
          kind: 'knob',
          name: k.name,
          a: fmt(k.to),
          b: fmt(k.from),
          confidence: 'medium',
          evidence,
          ...explained(explainKnob(k.name, input.workload)),
        },
      }))
    },
  },
  {name: 'identical inputs replayed in each target give different outputs: the op of that framework release', suspects: replaySuspects},
  {name: 'what no knob explains goes to the library versions, by where it starts', suspects: librarySuspects},
  {
    name: 'the accuracy gap is within seed-to-seed variance',
    suspects: (input) =>
      (input.seeds?.differences ?? [])
        .filter((d) => d.ci95 && !d.significant)
        .map((d) => ({
          score: SCORE.seedVarianceCoversGap,
          s: {
            kind: 'seed-variance',
            name: `${input.seeds?.metric === 'val_rmse' ? 'RMSE' : 'accuracy'} #${d.a} vs #${d.b}`,
            a: null,
            b: null,
            confidence: 'high',
            evidence: d.sentence,
            explanation: `The ${input.seeds?.metric === 'val_rmse' ? 'RMSE' : 'accuracy'} gap is no bigger than what changing only the seed produces, so it is not evidence that the environment changed the model.`,
            source: null,
          },
        })),
  },
]

export function rankSuspects(input: RankInput): Suspect[] {
  const seen = new Set<string>()
  return SUSPECT_RULES.flatMap((rule) => rule.suspects(input))
    .sort((x, y) => y.score - x.score)
    .filter((x) => {
      // one suspect per name and kind: the best-supported (a replay beats the same library inferred)
      const key = `${x.s.kind}|${x.s.name}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
    .map((x, i) => ({rank: i + 1, ...x.s}))
}

/**
 * An op replay that localized the drift (identical inputs, different outputs in the two targets):
 * the framework release that differs runs that op. High with a sourced entry for exactly that op
 * and version pair (Adam's update 1.x → 2.x); otherwise medium, "localized, cause not isolated".
 */
/** The toggles a replay tried, in a few words ("; no toggle reconciles them (mkldnn off: closer, …)"). */
const toggled = (e: Experiment) =>
  e.toggles?.length ? `; no toggle reconciles them (${e.toggles.map((t) => `${t.toggle}: ${t.outcome}`).join(', ')})` : ''

function replaySuspects(input: RankInput): Scored[] {
  // a knob that removes the drift is the cause; a replay then only cross-checks it (replayAgrees)
  if (knobsExplainAll(input)) return []
  const out: Scored[] = []
  for (const e of input.experiments.filter((x) => x.kind === 'replay' && x.outcome === 'localized')) {
    // a toggle that makes the second target's replay bitwise identical to the first's names the library it switches
    const reconciling = (e.toggles ?? []).find((t) => t.outcome === 'bitwise')
    if (reconciling) {
      // the libraries the toggle switches; several toggles at once (joined by ' + '): each named,
      // medium (only together), one toggle: its library, high
      const parts = reconciling.toggle.split(' + ')
      const paths = [
        ...new Set(
          parts.map((p) => Object.keys(TOGGLE_SUSPECT).find((k) => p.startsWith(k))).flatMap((k) => (k ? [TOGGLE_SUSPECT[k]!] : [])),
        ),
      ]
      const together = parts.length > 1
      const differs = `${e.id}: the ${e.op ?? 'op'} replayed on identical inputs differs between #${e.against} and #${e.target}`
      const evidence = together
        ? `${differs}; only ${reconciling.toggle} together make #${e.target}'s replay bitwise identical to #${e.against}'s`
        : reconciling.toggle.endsWith(' in both')
          ? `${differs}; replayed with ${reconciling.toggle.slice(0, -' in both'.length)} in both targets the two are bitwise identical`
          : `${differs}; replayed in #${e.target} with ${reconciling.toggle} it is bitwise identical to #${e.against}`
      for (const path of paths) {
        const changed = input.fingerprintChanges.find((r) => r.path === path)
        out.push({
          score: together ? SCORE.replayLocalizesDrift - 10 : SCORE.replayLocalizesDrift,
          s: {
            kind: 'library',
            name: path,
            a: changed?.a === undefined ? null : fmt(changed.a),
            b: changed?.b === undefined ? null : fmt(changed.b),
            confidence: together ? 'medium' : 'high',
            evidence,
            ...explained(explainPath(path)),
          },
        })
      }
      if (paths.length) continue
    }
    const row =
      input.fingerprintChanges.find((r) => r.path === 'torch.version') ??
      input.fingerprintChanges.find((r) => r.path === 'torch.git_version')
    if (!row) continue
    const general = explainPath(row.path)
    const step = e.first_divergence_before?.step ?? null
    const refined = general ? refinedChange(general, {phase: 'update', step, a: row.a, b: row.b}) : null
    const sourced = refined !== null && /^Adam /.test(e.op ?? '') && refined.id.startsWith('adam-')
    out.push({
      score: SCORE.replayLocalizesDrift,
      s: {
        kind: 'library',
        name: row.path,
        a: row.a === undefined ? null : fmt(row.a),
        b: row.b === undefined ? null : fmt(row.b),
        confidence: sourced ? 'high' : 'medium',
        evidence: `${e.id}: the ${e.op ?? 'op'} replayed on identical inputs in #${e.against} and #${e.target} gives different outputs, each replay reproducing its own target's recorded bytes${toggled(e)}${sourced ? '' : '; localized to that op, cause not isolated'}`,
        ...explained(sourced ? refined : general),
      },
    })
  }
  return out
}

export function libraryRelevance(id: string, where: Where | null): number {
  if (!where) return 0
  const hit = LIBRARY_RELEVANCE.find(
    (r) =>
      r.libraries.includes(id) && (r.module ? r.module.test(where.module_type ?? '') : true) && (r.phase ? r.phase === where.phase : true),
  )
  return hit?.bonus ?? 0
}

/** Library changes worth naming when no knob explains the drift, most specific first, one per knowledge-base entry. */
function librarySuspects(input: RankInput): Scored[] {
  if (!input.drift || knobsExplainAll(input)) return []
  const tested = input.experiments.some((e) => e.kind !== 'replay')
  const residual = tested
    ? 'with every differing runtime knob aligned the traces still diverge'
    : 'no runtime knob differs between the targets'
  const loc = input.residual ?? input.where
  const at = loc
    ? `; ${input.residual ? 'the remaining divergence' : 'the divergence'} starts in the ${loc.phase} phase at ${loc.entry}${loc.module_type ? ` (${loc.module_type})` : ''}, step ${loc.step}`
    : ''
  const seen = new Set<string>()
  const libs: {row: FingerprintRow; kb: KnownChange; score: number}[] = []
  // a replay whose oneDNN log shows no primitive ran (either target) rules oneDNN out: it is dropped
  const noOnednn = input.experiments.some((e) => e.kind === 'replay' && e.outcome === 'localized' && onednnRanNothing(e))
  for (const row of input.fingerprintChanges) {
    if (!['framework', 'cpu_math', 'gpu'].includes(row.group)) continue
    const kb = explainPath(row.path)
    if (!kb || seen.has(kb.id)) continue
    if (noOnednn && kb.id.startsWith('onednn-')) continue
    if (kb.workloads && input.workload && input.workload !== 'script' && !kb.workloads.includes(input.workload)) continue
    seen.add(kb.id)
    libs.push({row, kb, score: SCORE.libraryInferred + libraryRelevance(kb.id, loc)})
  }
  libs.sort((x, y) => y.score - x.score)
  return libs.map(({row, kb, score}, i) => ({
    score,
    s: {
      kind: 'library',
      name: row.path,
      a: row.a === undefined ? null : fmt(row.a),
      b: row.b === undefined ? null : fmt(row.b),
      confidence: i === 0 && (tested || libs.length === 1) ? 'medium' : 'low',
      evidence: `${residual}${at}; ${row.path} differs (${fmt(row.a)} → ${fmt(row.b)})`,
      // a known, more specific change of this kind that fits where it starts (e.g. Adam's update)
      ...explained(
        refinedChange(kb, {phase: loc?.phase ?? null, step: loc?.step ?? null, a: row.a, b: row.b, module: loc?.module_type ?? null}) ?? kb,
      ),
    },
  }))
}

/** One audited workload as the contrast rule sees it. */
export interface WorkloadContrast {
  workload: string
  /** its comparisons drift beyond noise */
  drifts: boolean
  /** the module types its model runs (Conv2d, LSTM, Linear, …) */
  moduleTypes: string[]
  attribution?: {where: RankInput['where']; suspects: Suspect[]}
}

/**
 * The contrast between workloads: when a workload diverges where a layer type starts that the
 * workloads staying bitwise identical do not have, the libraries implementing that layer type
 * become stronger suspects (low → medium), with that contrast as their evidence. Mutates the
 * suspects of the drifting workloads.
 */
export function contrastWorkloads(workloads: WorkloadContrast[]): void {
  const quiet = workloads.filter((w) => !w.drifts)
  for (const w of workloads.filter((x) => x.drifts && x.attribution?.where?.module_type)) {
    const where = w.attribution!.where!
    const type = where.module_type!
    const without = quiet.filter((q) => !q.moduleTypes.includes(type))
    if (without.length === 0) continue
    for (const s of w.attribution!.suspects) {
      if (s.kind !== 'library') continue
      const kb = explainPath(s.name)
      if (!kb || libraryRelevance(kb.id, where) === 0) continue
      if (s.confidence === 'low') s.confidence = 'medium'
      s.evidence += `; only workloads with ${type} layers diverge (${without.map((q) => q.workload).join(', ')} ${without.length > 1 ? 'have' : 'has'} none and ${without.length > 1 ? 'stay' : 'stays'} bitwise identical), so ${type}'s kernels are implicated`
    }
  }
}
