// The attribute stage: the noise floor of each target, seed statistics, zoom reruns for
// unstored first divergences, and counterfactual reruns that align one differing knob at a
// time (then all together) to see whether the first divergence disappears or moves. The
// judgements are pure (core/attribute.ts); this file only decides which reruns to spend the
// budget on and runs them.

import {createHash} from 'node:crypto'
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
import {
  firstCaptureDifference,
  judgeOutputs,
  judgeReplay,
  maxAbs,
  combinedToggle,
  plannedToggles,
  planForwardReplay,
  planInitReplay,
  planBackwardReplay,
  type BackwardCall,
  type BackwardReplayPlan,
  type ForwardReplayPlan,
  type InitReplayPlan,
  onednnSummary,
  entryModule,
  planUpdateReplay,
  replayInputValues,
  replayOp,
  toggleOutcome,
} from '../core/replay.js'
import type {Knobs, RunArtifacts, TensorValues} from '../core/types.js'
import {readCapture} from '../artifacts/run-dir.js'
import {isReproError, ReproError} from '../errors.js'
import type {Collected, Rerunner} from './audit-types.js'

export interface AttributeInput {
  collected: Collected
  compared: Comparisons
  seeds: number[]
  /** most reruns to spend (zoom counts two, each counterfactual one) */
  budget: number
  rerunner: Rerunner
  /** where each rerun and replay waits for a slot (the audit's --jobs, shared by every workload); none: they run at once */
  limit?: <T>(fn: () => Promise<T>) => Promise<T>
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
  // the seconds of each kind's probe runs, summed and reported apart (the op replays include
  // their capture reruns): each run is timed from when it gets its --jobs slot to its end, so
  // queueing behind other runs is not counted; a kind that ran nothing adds nothing
  const seconds = {zoom: 0, knob_reruns: 0, replays: 0}
  const limit = input.limit ?? (<T>(fn: () => Promise<T>) => fn())
  const measured = (kind: keyof typeof seconds): AttributeInput => {
    const slot = <T>(fn: () => Promise<T>): Promise<T> =>
      limit(async () => {
        const t0 = performance.now()
        try {
          return await fn()
        } finally {
          seconds[kind] += (performance.now() - t0) / 1000
        }
      })
    const r = input.rerunner
    return {
      ...input,
      rerunner: {
        ...r,
        rerun: (...args) => slot(() => r.rerun(...args)),
        replay: (...args) => slot(() => r.replay(...args)),
        replayForward: (...args) => slot(() => r.replayForward(...args)),
      },
    }
  }
  for (const pair of drifting) {
    const b = first(collected, pair.record.b.target)
    where ??= whereItStarts(pair.cmp.first_divergence, b.outcome.module_types)
    if (budget <= 0) continue
    budget -= await zoomIfUnstored(measured('zoom'), pair, budget)
    const reruns: Reruns = new Map()
    budget -= await counterfactuals(measured('knob_reruns'), pair, budget, experiments, reruns)
    budget -= await replayUpdate(measured('replays'), pair, budget, experiments, reruns)
    budget -= await replayForward(measured('replays'), pair, budget, experiments, reruns)
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
  const spent = seconds.zoom + seconds.knob_reruns + seconds.replays > 0
  return {
    noise_floor,
    seeds,
    experiments,
    where,
    residual,
    suspects,
    ...(unexercised.length ? {unexercised} : {}),
    ...(spent ? {explain_seconds: roundSeconds(seconds)} : {}),
  }
}

function roundSeconds(s: {zoom: number; knob_reruns: number; replays: number}): NonNullable<Attribution['explain_seconds']> {
  const r = (x: number) => Math.round(x * 100) / 100
  return {zoom: r(s.zoom), knob_reruns: r(s.knob_reruns), replays: r(s.replays)}
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
        : unexercisedBy(d.name, a.outcome.workload, String(b.outcome.knobs_effective['device'] ?? 'cpu'), bothWorldSize(a, b))
      if (note && !out.some((u) => u.name === d.name)) out.push({name: d.name, a: String(d.a), b: String(d.b), note})
    }
  }
  return out
}

/**
 * The world size both runs train at (the smaller one): a data-parallel setting such as the bucket
 * size matters only when both sides are data-parallel; with one side at 1 the world size itself is
 * the difference.
 */
function bothWorldSize(a: RunArtifacts, b: RunArtifacts): number {
  const ws = (r: RunArtifacts) => Number(r.outcome.knobs_effective['world_size'] ?? 1) || 1
  return Math.min(ws(a), ws(b))
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
  // both sides at once (the rerunner bounds them by --jobs)
  const zoomed = await Promise.all(
    [pair.record.a.target, pair.record.b.target].map((t) => {
      const what = `zoom: #${t} storing step ${step}`
      return attempt(input, what, () => input.rerunner.rerun(t, {storeSteps: [step]}, what, `zoom-s${step}-t${t}`))
    }),
  )
  if (typeof zoomed[0] === 'string' || typeof zoomed[1] === 'string') return 2
  pair.record.divergence = summarizeDivergence(
    compareTraces(zoomed[0]!.trace, zoomed[0]!.values, zoomed[1]!.trace, zoomed[1]!.values, TOLERANCE),
  )
  return 2
}

/** Rerun the pair's second target with each differing knob aligned, then all of them. Returns the reruns spent. */
async function counterfactuals(
  input: AttributeInput,
  pair: ComparedPair,
  budget: number,
  experiments: Experiment[],
  reruns: Reruns,
): Promise<number> {
  const {collected} = input
  const a = first(collected, pair.record.a.target)
  const b = first(collected, pair.record.b.target)
  const target = collected.records.find((r) => r.index === pair.record.b.target)!
  const knobs = collected.configs.get(target.index)!.knobs
  // a knob this workload or device does not exercise cannot explain anything, and one a user's
  // script sets itself cannot be aligned from outside: no rerun for either
  const device = String(b.outcome.knobs_effective['device'] ?? 'cpu')
  const overridden = new Set([...(a.outcome.knobs_overridden ?? []), ...(b.outcome.knobs_overridden ?? [])])
  const exercised = runKnobDifferences(a, b).filter(
    (d) => !overridden.has(d.name) && !unexercisedBy(d.name, b.outcome.workload, device, bothWorldSize(a, b)),
  )
  // planned up front and run side by side (the rerunner bounds them by --jobs); recorded in plan order
  const trials = plannedTrials(exercised)
    .slice(0, Math.max(0, budget))
    .map((trial, i) => ({trial, id: `e${experiments.length + 1 + i}`, aligned: alignedKnobs(knobs, trial)}))
  const runs = await Promise.all(
    trials.map(({trial, id, aligned}) => {
      const label = `${target.name} with ${trial.map((d) => (d.a === null ? `${d.name} unset` : `${d.name}=${String(d.a)}`)).join(', ')}`
      return attempt(input, `explain ${id}: ${label}`, () =>
        input.rerunner.rerun(target.index, {knobs: aligned}, label, `${id}-t${target.index}`),
      )
    }),
  )
  for (const [i, {trial, id, aligned}] of trials.entries()) {
    const run = runs[i]!
    const after: TraceComparison | {failed: string} =
      typeof run === 'string' ? {failed: run} : compareTraces(a.trace, a.values, run.trace, run.values, TOLERANCE)
    if (typeof run !== 'string' && !('failed' in after)) reruns.set(id, {run, cmp: after, knobs: aligned})
    experiments.push(experimentRecord(id, trial, pair.record, pair.cmp.first_divergence, after))
  }
  return trials.length
}

/** Counterfactual reruns by experiment id: the run, its comparison with the first target, its knobs. */
type Reruns = Map<string, {run: RunArtifacts; cmp: TraceComparison; knobs: Knobs}>

/**
 * What an op replay of a pair works on, or null when there is none to do (a script run, a
 * recorded target): the first target's run and the second one's — with knobs aligned the
 * divergence may move (into an update, say), so the aligned rerun with the most knobs aligned, as
 * the residual is found, else the pair's own — and where they first diverge. When aligning a knob
 * already removes the drift, the pair's own divergence is replayed as a cross-check, and that
 * alignment becomes a toggle (`align`): the knob rerun and the replay should agree.
 */
function replaySubject(input: AttributeInput, pair: ComparedPair, experiments: Experiment[], reruns: Reruns) {
  const config = input.collected.configs.get(pair.record.a.target)
  if (!config) return null
  if (!input.rerunner.canReplay(pair.record.a.target) || !input.rerunner.canReplay(pair.record.b.target)) return null
  const align = experiments
    .filter((e) => e.kind !== 'replay' && e.outcome === 'disappears' && reruns.has(e.id))
    .sort((x, y) => x.knobs.length - y.knobs.length)
    .map((e) => ({
      name: `${e.knobs.map((k) => (k.to === null ? `${k.name} unset` : `${k.name}=${String(k.to)}`)).join(' + ')} (as in #${e.against})`,
      knobs: reruns.get(e.id)!.knobs,
      toggle: null,
      combined: false,
    }))
  const moved: Experiment | undefined = align.length
    ? undefined
    : experiments.filter((e) => e.outcome === 'moves-later' && reruns.has(e.id)).sort((x, y) => y.knobs.length - x.knobs.length)[0]
  const rerun = moved ? reruns.get(moved.id) : undefined
  const fd = rerun ? rerun.cmp.first_divergence : pair.cmp.first_divergence
  if (!fd) return null
  const a = first(input.collected, pair.record.a.target)
  const b = rerun?.run ?? first(input.collected, pair.record.b.target)
  return {config, a, b, fd, moved, rerun, align}
}

/**
 * Op replay of an update (core/replay.ts): when the first divergence is in the optimizer update and
 * no knob explained it, replay that update on the reference run's stored inputs in both targets.
 * Returns the probe runs spent (two, or none).
 */
async function replayUpdate(
  input: AttributeInput,
  pair: ComparedPair,
  budget: number,
  experiments: Experiment[],
  reruns: Reruns,
): Promise<number> {
  const subject = replaySubject(input, pair, experiments, reruns)
  if (!subject) return 0
  const {config, a, b, fd, moved, rerun, align} = subject
  // a knob explains it (an update replay has no toggle to cross-check it with), or a user's script (its optimizer is its own)
  if (align.length || config.script) return 0
  const decision = planUpdateReplay(a, b, fd, {type: config.train.optimizer, lr: config.train.lr})
  const id = `e${experiments.length + 1}`
  const base = {id, kind: 'replay' as const, knobs: [], target: pair.record.b.target, against: pair.record.a.target}
  const before = {step: fd.step, entry: fd.entry}
  if ('skip' in decision) return 0
  if ('inputsDiffer' in decision) {
    const {step, entry} = decision.inputsDiffer
    experiments.push({
      ...base,
      op: `update of step ${fd.step}`,
      outcome: 'inputs-differ',
      first_divergence_before: before,
      first_divergence_after: null,
      note: `not replayed: its input ${entry} (step ${step}) already differs between the targets, so the drift comes from earlier code`,
    })
    return 0
  }
  const {plan} = decision
  const values = replayInputValues(a, plan)
  if (!values || budget < 2 || !plan.inputs.every((i) => sha256Of(values.get(i.name)!) === i.sha256)) return 0
  // the replay in each target, side by side (they share nothing but the stored inputs)
  const ran = await Promise.all(
    [pair.record.a.target, pair.record.b.target].map(async (t) => {
      const what = `explain ${id}: replay the ${replayOp(plan)} in #${t}`
      input.rerunner.progress.start(what)
      try {
        const knobs = t === pair.record.b.target ? rerun?.knobs : undefined
        const r = await input.rerunner.replay(t, plan, values, `${id}-replay-t${t}`, knobs)
        input.rerunner.progress.done(what, r.seconds)
        return r.outputs
      } catch (e) {
        if (!isReproError(e)) throw e
        input.rerunner.progress.fail(what, e.oneLine())
        return e
      }
    }),
  )
  const error = ran.find((r): r is ReproError => r instanceof ReproError)
  if (error) {
    experiments.push({
      ...base,
      op: replayOp(plan),
      outcome: 'failed',
      first_divergence_before: before,
      first_divergence_after: null,
      note: error.oneLine(),
    })
    return 2
  }
  const outputs = ran as Record<string, string>[]
  const j = judgeReplay(plan, outputs[0]!, outputs[1]!)
  const total = Object.keys(plan.recorded.a).length
  const note =
    j.outcome === 'not-faithful'
      ? `a replay did not reproduce its own target's recorded bytes (${j.unfaithful.slice(0, 3).join(', ')}), so it proves nothing`
      : j.outcome === 'localized'
        ? `identical inputs (${plan.inputs.length} tensors) give different outputs in ${j.differing.length} of ${total} entries (first: ${j.differing[0]}); each replay reproduces its own target's recorded bytes`
        : `identical outputs on identical inputs: the update does not change between the targets`
  const on = moved ? `; on #${pair.record.b.target}'s rerun with ${moved.knobs.map((k) => k.name).join(', ')} aligned (${moved.id})` : ''
  experiments.push({
    ...base,
    op: replayOp(plan),
    outcome: j.outcome,
    first_divergence_before: before,
    first_divergence_after: null,
    note: note + on,
  })
  return 2
}

/**
 * Op replay of a forward op or of the initialization: when the first divergence (after aligning
 * knobs, if a rerun moved it) is a module's output at a training step, capture that module's inputs
 * in a rerun of each target, compare the captures, replay the module alone in both on the reference
 * capture's bytes; when it is at `init`, rebuild the model in both from the same generator state.
 * When the outputs differ, replay the second target with toggles (oneDNN off, the first target's ATen
 * CPU capability, oneDNN capped at AVX2, and, as a cross-check, a knob whose rerun removed the drift)
 * to see which one reconciles it. Returns the runs spent.
 */
async function replayForward(
  input: AttributeInput,
  pair: ComparedPair,
  budget: number,
  experiments: Experiment[],
  reruns: Reruns,
): Promise<number> {
  const {collected, rerunner} = input
  const ta = pair.record.a.target
  const tb = pair.record.b.target
  const subject = budget >= 2 ? replaySubject(input, pair, experiments, reruns) : null
  if (!subject) return 0
  const {a, b, fd, moved, rerun, align} = subject
  const bKnobs = rerun?.knobs ?? collected.configs.get(tb)!.knobs
  const id = `e${experiments.length + 1}`
  const before = {step: fd.step, entry: fd.entry}
  const on = moved ? `; on #${tb}'s rerun with ${moved.knobs.map((k) => k.name).join(', ')} aligned (${moved.id})` : ''
  // a user's script: its modules' forward (the model is the script's to build, so no init, and no backward capture yet)
  const script = !!subject.config.script
  const init = script ? {skip: 'a script run'} : planInitReplay(a, b, fd)
  let spent = 0
  let plan: InitReplayPlan | ForwardReplayPlan | BackwardReplayPlan
  if ('plan' in init) plan = init.plan
  else if (fd.phase === 'backward' && typeof fd.step === 'number' && !script) {
    // backward: which module's backward first computes differently, by firing order (one rerun each)
    if (budget < 6) return 0
    // the firing order in both targets at once
    const step: number = fd.step
    const recorded = await Promise.all(
      (
        [
          [ta, undefined],
          [tb, bKnobs],
        ] as const
      ).map(async ([t, knobs]) => {
        const what = `explain ${id}: record the backward order at step ${fd.step} in #${t}`
        const capture = {step, backward: 'order' as const}
        let order: BackwardCall[] = []
        const r = await attempt(input, what, () =>
          rerunner.rerun(t, {...(knobs ? {knobs} : {}), capture}, what, `${id}-order-t${t}`).then(async (x) => {
            order = (await readCapture(x.outDir!, `#${t}`)).meta.backward_order ?? []
            return x
          }),
        )
        return typeof r === 'string' ? r : order
      }),
    )
    spent += 2
    const error = recorded.find((r): r is string => typeof r === 'string')
    if (error !== undefined) {
      experiments.push({
        ...{id, kind: 'replay' as const, knobs: [], target: tb, against: ta},
        op: `backward at step ${fd.step}`,
        outcome: 'failed',
        first_divergence_before: before,
        first_divergence_after: null,
        note: error,
      })
      return spent
    }
    const orders = recorded as BackwardCall[][]
    const decision = planBackwardReplay(a, b, fd.step, orders[0]!, orders[1]!)
    if ('skip' in decision) return spent
    if ('inputsDiffer' in decision) {
      const {module, after} = decision.inputsDiffer
      experiments.push({
        id,
        kind: 'replay',
        op: `${module} (${a.outcome.module_types[module] ?? 'module'}) backward at step ${fd.step}`,
        knobs: [],
        target: tb,
        against: ta,
        outcome: 'inputs-differ',
        first_divergence_before: before,
        first_divergence_after: null,
        note: `not replayed: the gradient reaching ${module} already differs between the targets, so the drift is in code between modules${after ? ` (after ${after}'s backward)` : ' (before the first module backward: the loss)'}${on}`,
      })
      return spent
    }
    plan = decision.plan
  } else {
    const forward = planForwardReplay(a, b, fd)
    if ('skip' in forward || budget < 4) return 0
    plan = forward.plan
  }
  const kind = plan.kind
  const modules = Object.keys(a.outcome.module_types ?? {})
  const module = plan.kind === 'init' ? entryModule(plan.entry, modules) : plan.module
  const type = plan.kind === 'backward' ? plan.type : module ? (a.outcome.module_types[module] ?? 'module') : null
  const op =
    plan.kind === 'init'
      ? `initialization${module ? ` (first differing: ${plan.entry}, ${type})` : ''}`
      : `${plan.module} (${type}) ${plan.kind} at step ${plan.step}${plan.kind === 'backward' ? ' (first by execution order)' : ''}`
  const base = {id, kind: 'replay' as const, op, knobs: [], target: tb, against: ta}
  const failed = (note: string, n: number) => {
    experiments.push({...base, outcome: 'failed', first_divergence_before: before, first_divergence_after: null, note})
    return spent + n
  }
  // 1. forward / backward: capture the module's inputs (and grad_output) at that step in both targets
  const captures: {dir: string; entries: {name: string; sha256: string}[]}[] = []
  if (plan.kind !== 'init') {
    // both targets' captures at once (the rerunner bounds them by --jobs), kept in target order
    const capture = {step: plan.step, module: plan.module, ...(plan.kind === 'backward' ? {backward: true} : {})}
    const got = await Promise.all(
      (
        [
          [ta, undefined],
          [tb, bKnobs],
        ] as const
      ).map(async ([t, knobs]) => {
        const what = `explain ${id}: capture the inputs of ${plan.module} at step ${plan.step} in #${t}`
        let taken: {dir: string; entries: {name: string; sha256: string}[]} | null = null
        const r = await attempt(input, what, () =>
          rerunner.rerun(t, {...(knobs ? {knobs} : {}), capture}, what, `${id}-capture-t${t}`).then(async (x) => {
            const meta = await readCapture(x.outDir!, `#${t}`)
            taken = {dir: x.outDir!, entries: meta.meta.entries}
            return x
          }),
        )
        return typeof r === 'string' ? r : taken!
      }),
    )
    for (const g of got) if (typeof g === 'string') return failed(g, 2)
    captures.push(...(got as {dir: string; entries: {name: string; sha256: string}[]}[]))
    const differs = firstCaptureDifference(captures[0]!.entries, captures[1]!.entries)
    if (differs) {
      experiments.push({
        ...base,
        outcome: 'inputs-differ',
        first_divergence_before: before,
        first_divergence_after: null,
        note: `not replayed: ${plan.module}'s captured ${differs} already differs between the targets, so the drift is in code before it (between modules)${on}`,
      })
      return spent + 2
    }
  }
  spent += captures.length
  // 2. replay it alone in both, on the first target's capture (init: from the seed's generator state)
  const replayIn = async (t: number, knobs: Knobs | undefined, toggle: {mkldnn: boolean} | null, label: string, dir: string) => {
    const what = `explain ${id}: replay the ${plan.kind === 'init' ? 'initialization' : `${plan.module} ${plan.kind}`} in #${t}${label}`
    rerunner.progress.start(what)
    try {
      const r = await rerunner.replayForward(
        t,
        plan.kind === 'init'
          ? {kind, ...(knobs ? {knobs} : {}), toggle}
          : {kind, captureDir: captures[0]!.dir, step: plan.step, module: plan.module, ...(knobs ? {knobs} : {}), toggle},
        dir,
      )
      rerunner.progress.done(what, r.seconds)
      return r
    } catch (e) {
      if (!isReproError(e)) throw e
      rerunner.progress.fail(what, e.oneLine())
      return e.oneLine()
    }
  }
  // both at once: each replays the same capture in its own target
  const [ra, rb] = await Promise.all([
    replayIn(ta, undefined, null, '', `${id}-replay-t${ta}`),
    replayIn(tb, bKnobs, null, '', `${id}-replay-t${tb}`),
  ])
  if (typeof ra === 'string') return failed(ra, 2)
  if (typeof rb === 'string') return failed(rb, 2)
  spent += 2
  if (plan.kind === 'init' && ra.rng_before !== rb.rng_before) {
    experiments.push({
      ...base,
      outcome: 'inputs-differ',
      first_divergence_before: before,
      first_divergence_after: null,
      note: `the generator state the initializers start from differs between the targets (the seeding itself differs), so the initializers are not compared on identical inputs${on}`,
    })
    return spent
  }
  const j = judgeOutputs(plan.recorded, ra.outputs, rb.outputs)
  const toggles: NonNullable<Experiment['toggles']> = []
  if (j.outcome === 'localized') {
    const gap = maxAbs(ra.values, rb.values)
    const planned = plannedToggles(a, b, bKnobs)
    // when no single toggle reconciles, all of them together (the LSTM needs oneDNN off and ATen's AVX2 at once)
    if (planned.length > 1) planned.push(combinedToggle(planned, bKnobs))
    // oneDNN off is replayed in both targets and the two compared: identical means the difference lives
    // in oneDNN; every other toggle changes the second target only, against the first one's replay
    let reference: typeof ra | string | undefined
    for (const t of [...align, ...planned]) {
      if (t.combined && toggles.some((x) => x.outcome === 'bitwise')) break
      const both = !t.combined && t.toggle?.mkldnn === false
      if (spent + (both ? 2 : 1) > budget) break
      const name = both ? `${t.name} in both` : t.name
      const dir = `${id}-toggle${toggles.length + 1}`
      let r: Awaited<ReturnType<typeof replayIn>>
      if (both) {
        // the toggle in both targets at once
        spent += 2
        ;[reference, r] = await Promise.all([
          replayIn(ta, undefined, t.toggle, ` with ${t.name}`, `${dir}-t${ta}`),
          replayIn(tb, t.knobs, t.toggle, ` with ${t.name}`, `${dir}-t${tb}`),
        ])
      } else {
        spent++
        r = await replayIn(tb, t.knobs, t.toggle, ` with ${t.name}`, `${dir}-t${tb}`)
      }
      const ref = both ? reference! : ra
      if (typeof r === 'string' || typeof ref === 'string') {
        const err = typeof r === 'string' ? r : String(ref)
        toggles.push({toggle: name, outcome: /signal|SIGILL|Illegal instruction/i.test(err) ? 'unavailable' : 'failed', max_abs: null})
        continue
      }
      const identical = Object.keys(ref.outputs).every((n) => r.outputs[n] === ref.outputs[n])
      const after = maxAbs(ref.values, r.values)
      toggles.push({toggle: name, outcome: toggleOutcome(identical, gap, after), max_abs: after})
    }
  }
  const total = Object.keys(plan.recorded.a).length
  const inputs = plan.kind !== 'init' ? `identical inputs (${captures[0]!.entries.length} captured tensors)` : 'the same generator state'
  const note =
    j.outcome === 'not-faithful'
      ? `a replay did not reproduce its own target's recorded bytes (${j.unfaithful.slice(0, 3).join(', ')}), so it proves nothing`
      : j.outcome === 'localized'
        ? `${inputs} ${plan.kind === 'init' ? 'gives' : 'give'} different outputs in ${j.differing.length} of ${total} (first: ${j.differing[0]}); each replay reproduces its own target's recorded bytes${toggles.length ? `; toggles on #${tb}: ${toggles.map((x) => `${x.toggle} ${x.outcome}`).join(', ')}` : ''}`
        : plan.kind !== 'init'
          ? `identical outputs on identical inputs: the module's ${plan.kind} does not compute differently, look earlier`
          : 'identical parameters from the same generator state: the initialization does not differ'
  const onednn = ra.onednn && rb.onednn ? {onednn: {a: ra.onednn, b: rb.onednn}} : {}
  const ran = ra.onednn && rb.onednn && j.outcome !== 'not-faithful' ? `; ${onednnSummary(ra.onednn, rb.onednn, ta, tb)}` : ''
  experiments.push({
    ...base,
    outcome: j.outcome,
    first_divergence_before: before,
    first_divergence_after: null,
    note: note + ran + on,
    ...(toggles.length ? {toggles} : {}),
    ...onednn,
  })
  return spent
}

/** sha256 of a stored value's bytes, as the probe hashes a tensor (little-endian, contiguous). */
function sha256Of(v: TensorValues): string {
  return createHash('sha256')
    .update(Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength))
    .digest('hex')
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
