// Op replay (issue 27), its first slice: a drift whose first divergence is in an optimizer update.
// Every input of that update is stored (the parameters and optimizer state after the previous
// step, the gradients of this one); when they are bitwise identical in both targets, the update
// is replayed on exactly those bytes in each target (python -m repro_probe replay). Different
// outputs from identical inputs localize the drift to the update op; identical outputs clear it.
// A replay that does not reproduce its own target's recorded bytes proves nothing. Pure: the
// plan and the judgement; app/explain.ts runs it.

import {storedKey, type Knobs, type RunArtifacts, type StoredValues, type TensorValues, type TraceStep} from './types.js'
import type {FirstDivergence} from './trace-compare.js'

export interface ReplayInput {
  /** the name inside the replay file: param/<n>, grad/<n>, opt/<n>.<key> */
  name: string
  /** where its value is stored in the reference run */
  step: number | 'init'
  entry: string
  sha256: string
}

export interface UpdateReplayPlan {
  kind: 'update'
  /** the trace step whose update is replayed (the optimizer did `step` updates before it) */
  step: number
  optimizer: {type: 'adam' | 'sgd'; lr: number}
  /** the parameters, in the optimizer's (named_parameters) order */
  params: string[]
  inputs: ReplayInput[]
  /** each side's recorded outputs of that update (param/<n>, opt/<n>.<key>) → sha256 */
  recorded: {a: Record<string, string>; b: Record<string, string>}
}

export type ReplayDecision =
  | {plan: UpdateReplayPlan}
  /** an input already differs: the drift comes from earlier code (named), not from this update */
  | {inputsDiffer: {step: number | 'init'; entry: string}}
  | {skip: string}

const stepOf = (run: RunArtifacts, step: number | 'init'): TraceStep | undefined => run.trace.steps.find((s) => s.step === step)

/** Plan the replay of the update where a and b first diverge, or say why there is none. */
export function planUpdateReplay(
  a: RunArtifacts,
  b: RunArtifacts,
  fd: FirstDivergence,
  optimizer: {type: string; lr: number},
): ReplayDecision {
  if (fd.phase !== 'update' || typeof fd.step !== 'number') return {skip: 'the first divergence is not in an optimizer update'}
  if (optimizer.type !== 'adam' && optimizer.type !== 'sgd') return {skip: `no replay for the ${optimizer.type} optimizer`}
  const k = fd.step
  const before: number | 'init' = k === 0 ? 'init' : k - 1
  const [stepA, stepB] = [stepOf(a, k), stepOf(b, k)]
  const [prevA, prevB] = [stepOf(a, before), stepOf(b, before)]
  if (!stepA || !stepB || !prevA || !prevB) return {skip: `step ${k} or the one before it is missing from a trace`}
  if (!stepA.stored || !prevA.stored) return {skip: `the values of step ${k} and the one before it are not both stored`}
  const params = stepA.entries.filter((e) => e.name.startsWith('grad/')).map((e) => e.name.slice('grad/'.length))
  if (params.length === 0) return {skip: `step ${k} has no gradients`}
  const inputs: ReplayInput[] = []
  const digest = (s: TraceStep, name: string) => s.entries.find((e) => e.name === name)?.sha256
  const need = (step: number | 'init', src: TraceStep, other: TraceStep, entry: string, name = entry): ReplayDecision | null => {
    const sa = digest(src, entry)
    if (sa === undefined) return {skip: `${entry} at step ${step} is not in the trace`}
    if (digest(other, entry) !== sa) return {inputsDiffer: {step, entry}}
    inputs.push({name, step, entry, sha256: sa})
    return null
  }
  for (const n of params) {
    // the parameter before the update: after the previous step's update (init: as initialized)
    const miss = need(before, prevA, prevB, `param/${n}`) ?? need(k, stepA, stepB, `grad/${n}`)
    if (miss) return miss
    if (k > 0) {
      for (const e of prevA.entries.filter((x) => x.name.startsWith(`opt/${n}.`))) {
        const m = need(before, prevA, prevB, e.name)
        if (m) return m
      }
    }
  }
  const outputs = (s: TraceStep) =>
    Object.fromEntries(
      s.entries.filter((e) => params.some((n) => e.name === `param/${n}` || e.name.startsWith(`opt/${n}.`))).map((e) => [e.name, e.sha256]),
    )
  return {
    plan: {
      kind: 'update',
      step: k,
      optimizer: {type: optimizer.type, lr: optimizer.lr},
      params,
      inputs,
      recorded: {a: outputs(stepA), b: outputs(stepB)},
    },
  }
}

/** The stored values of a plan's inputs in the reference run (null: one is not stored). */
export function replayInputValues(run: RunArtifacts, plan: UpdateReplayPlan): Map<string, TensorValues> | null {
  const out = new Map<string, TensorValues>()
  for (const i of plan.inputs) {
    const v = run.values.get(storedKey(i.step, i.entry))
    if (!v) return null
    out.set(i.name, v)
  }
  return out
}

export type ReplayOutcome = 'localized' | 'cleared' | 'not-faithful'

/** What the replays say, given each side's outputs (name → sha256) on the same inputs. */
export function judgeReplay(
  plan: UpdateReplayPlan,
  outA: Record<string, string>,
  outB: Record<string, string>,
): {outcome: ReplayOutcome; differing: string[]; unfaithful: string[]} {
  const names = Object.keys(plan.recorded.a)
  const unfaithful = [
    ...names.filter((n) => outA[n] !== plan.recorded.a[n]).map((n) => `#a ${n}`),
    ...Object.keys(plan.recorded.b)
      .filter((n) => outB[n] !== plan.recorded.b[n])
      .map((n) => `#b ${n}`),
  ]
  const differing = names.filter((n) => outA[n] !== outB[n])
  if (unfaithful.length) return {outcome: 'not-faithful', differing, unfaithful}
  return {outcome: differing.length ? 'localized' : 'cleared', differing, unfaithful}
}

/** The op a plan replays, in words. */
export function replayOp(plan: UpdateReplayPlan): string {
  return `${plan.optimizer.type === 'adam' ? 'Adam' : 'SGD (momentum 0.9)'} update of step ${plan.step}`
}

// ---- forward ops: a module's output where the traces first diverge -----------------------------

export interface ForwardReplayPlan {
  kind: 'forward'
  step: number
  /** the module whose forward output first diverges (its dotted path in the model) */
  module: string
  /** each side's recorded outputs of that module at that step (fwd/<module>, fwd/<module>.i…) → sha256 */
  recorded: {a: Record<string, string>; b: Record<string, string>}
}

/** The module of a forward entry (`fwd/lstm.0` of an LSTM's tuple output is module `lstm`), or null. */
export function forwardModule(entry: string, modules: readonly string[]): string | null {
  if (!entry.startsWith('fwd/') || entry.includes('#')) return null // a second call of a module in a step: not captured
  const path = entry.slice('fwd/'.length)
  // the longest module path the entry is, or starts with followed by .<index>
  const hits = modules.filter((m) => path === m || (path.startsWith(`${m}.`) && /^(\.\d+){1,2}$/.test(path.slice(m.length))))
  return hits.sort((x, y) => y.length - x.length)[0] ?? null
}

/** Plan the capture and replay of the module whose forward output first diverges, or say why not. */
export function planForwardReplay(a: RunArtifacts, b: RunArtifacts, fd: FirstDivergence): {plan: ForwardReplayPlan} | {skip: string} {
  if (fd.phase !== 'forward' || typeof fd.step !== 'number')
    return {skip: 'the first divergence is not a forward output of a training step'}
  const modules = Object.keys(a.outcome.module_types ?? {})
  const module = forwardModule(fd.entry, modules)
  if (!module) return {skip: `${fd.entry} is not the output of one module call`}
  const outputs = (run: RunArtifacts) => {
    const s = stepOf(run, fd.step)
    return Object.fromEntries(
      (s?.entries ?? [])
        .filter(
          (e) =>
            e.name === `fwd/${module}` ||
            (e.name.startsWith(`fwd/${module}.`) && /^(\.\d+){1,2}$/.test(e.name.slice(`fwd/${module}`.length))),
        )
        .map((e) => [e.name, e.sha256]),
    )
  }
  const recorded = {a: outputs(a), b: outputs(b)}
  if (Object.keys(recorded.a).length === 0) return {skip: `no recorded output of ${module} at step ${fd.step}`}
  return {plan: {kind: 'forward', step: fd.step, module, recorded}}
}

// ---- init: the parameters as initialized ------------------------------------------------------

export interface InitReplayPlan {
  kind: 'init'
  /** each side's recorded `init` entries (param/<n>, buffer/<n>) → sha256 */
  recorded: {a: Record<string, string>; b: Record<string, string>}
  /** the first entry that differs (its module's initializer is the op) */
  entry: string
}

/** Plan the replay of the model's initialization when the traces first differ at `init`, or say why not. */
export function planInitReplay(a: RunArtifacts, b: RunArtifacts, fd: FirstDivergence): {plan: InitReplayPlan} | {skip: string} {
  if (fd.step !== 'init') return {skip: 'the first divergence is not at init'}
  const entries = (run: RunArtifacts) => Object.fromEntries((stepOf(run, 'init')?.entries ?? []).map((e) => [e.name, e.sha256]))
  const recorded = {a: entries(a), b: entries(b)}
  if (Object.keys(recorded.a).length === 0) return {skip: 'no recorded init entries'}
  return {plan: {kind: 'init', recorded, entry: fd.entry}}
}

/** The module a param/ or buffer/ entry belongs to (`param/mlp.0.weight` → `mlp.0`), or null. */
export function entryModule(entry: string, modules: readonly string[]): string | null {
  const m = /^(?:param|buffer|grad)\/(.+)\.[^.]+$/.exec(entry)
  if (!m) return null
  return modules.includes(m[1]!) ? m[1]! : null
}

/** A capture's tensors (capture.json `entries`): the first whose bytes differ between two targets, or null. */
export function firstCaptureDifference(
  a: readonly {name: string; sha256: string}[],
  b: readonly {name: string; sha256: string}[],
): string | null {
  const other = new Map(b.map((e) => [e.name, e.sha256]))
  for (const e of a) if (e.name !== 'rng/cpu' && other.get(e.name) !== e.sha256) return e.name
  for (const e of b) if (e.name !== 'rng/cpu' && !a.some((x) => x.name === e.name)) return e.name
  return null
}

/** The same judgement for any replay: fidelity to each side's recording first, then a vs b. */
export function judgeOutputs(
  recorded: {a: Record<string, string>; b: Record<string, string>},
  outA: Record<string, string>,
  outB: Record<string, string>,
): {outcome: ReplayOutcome; differing: string[]; unfaithful: string[]} {
  return judgeReplay({recorded} as UpdateReplayPlan, outA, outB)
}

/** A toggle replayed in the second target, and what it does to the gap with the first target's replay. */
export interface ToggleResult {
  /** e.g. "mkldnn off", "ATEN_CPU_CAPABILITY=avx2" */
  toggle: string
  /** bitwise: now identical to the first target's replay; closer: max |Δ| smaller; unchanged; unavailable (the CPU cannot) */
  outcome: 'bitwise' | 'closer' | 'unchanged' | 'unavailable' | 'failed'
  max_abs: number | null
}

/** What a toggle's outcome is, from the max |Δ| against the reference replay before and after it. */
export function toggleOutcome(identical: boolean, before: number | null, after: number | null): ToggleResult['outcome'] {
  if (identical) return 'bitwise'
  if (before !== null && after !== null && after < before) return 'closer'
  return 'unchanged'
}

/** The fingerprint path a toggle that reconciles the replays names (the library it switches). */
export const TOGGLE_SUSPECT: Record<string, string> = {
  'mkldnn off': 'torch.config.onednn',
  ONEDNN_MAX_CPU_ISA: 'torch.config.onednn',
  ATEN_CPU_CAPABILITY: 'torch.config.cpu_capability',
  threads: 'threads',
}

export function combinedToggle(planned: {name: string; knobs: Knobs; toggle: {mkldnn: boolean} | null}[], bKnobs: Knobs) {
  const env = Object.assign({}, ...planned.map((t) => t.knobs.env)) as Record<string, string>
  return {name: planned.map((t) => t.name).join(' + '), knobs: {...bKnobs, env}, toggle: {mkldnn: false}, combined: true}
}

/**
 * The toggles worth replaying the second target with: oneDNN off; the first target's ATen CPU capability where it differs (the host ran it, so the CPU has it); oneDNN capped at AVX2 where the second runs AVX-512.
 */
export function plannedToggles(
  a: RunArtifacts,
  b: RunArtifacts,
  bKnobs: Knobs,
): {name: string; knobs: Knobs; toggle: {mkldnn: boolean} | null; combined?: boolean}[] {
  const capability = (run: RunArtifacts) => String(pathOf(run.fingerprint, 'torch.config.cpu_capability') ?? '')
  const out: {name: string; knobs: Knobs; toggle: {mkldnn: boolean} | null; combined?: boolean}[] = [
    {name: 'mkldnn off', knobs: bKnobs, toggle: {mkldnn: false}},
  ]
  const ca = capability(a)
  const cb = capability(b)
  if (/^(DEFAULT|AVX2|AVX512)$/i.test(ca) && ca.toUpperCase() !== cb.toUpperCase() && !('ATEN_CPU_CAPABILITY' in bKnobs.env)) {
    const value = ca.toLowerCase()
    out.push({name: `ATEN_CPU_CAPABILITY=${value}`, knobs: {...bKnobs, env: {...bKnobs.env, ATEN_CPU_CAPABILITY: value}}, toggle: null})
  }
  if (/^AVX512/i.test(cb) && !('ONEDNN_MAX_CPU_ISA' in bKnobs.env))
    out.push({name: 'ONEDNN_MAX_CPU_ISA=AVX2', knobs: {...bKnobs, env: {...bKnobs.env, ONEDNN_MAX_CPU_ISA: 'AVX2'}}, toggle: null})
  return out
}

function pathOf(obj: unknown, dotted: string): unknown {
  let cur: unknown = obj
  for (const k of dotted.split('.')) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[k] : undefined
  return cur
}

/** The largest |a − b| over the float tensors two replays output (Infinity when shapes differ or one is missing). */
export function maxAbs(a: StoredValues, b: StoredValues): number {
  let m = 0
  for (const [name, x] of a) {
    const y = b.get(name)
    if (!y || y.data.length !== x.data.length) return Number.POSITIVE_INFINITY
    if (!(x.data instanceof Float32Array || x.data instanceof Float64Array)) continue
    for (let i = 0; i < x.data.length; i++) {
      const d = Math.abs((x.data[i] as number) - (y.data[i] as number))
      if (d > m || Number.isNaN(d)) m = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d
    }
  }
  return m
}

/**
 * What oneDNN ran in two replays, in a few words (reorders, which only move data, left out):
 * "oneDNN ran nothing in either", or "oneDNN ran convolution (jit:avx512_core) in #1, … in #2".
 * Each primitive is "<kind>:<implementation>:<prop_kind>" as the probe records it.
 */
export function onednnSummary(a: readonly string[], b: readonly string[], ta: number, tb: number): string {
  const words = (list: readonly string[]) => {
    const ran = list.filter((p) => !p.startsWith('reorder:'))
    if (ran.length === 0) return null
    const shown = ran.slice(0, 4).map((p) => {
      const [kind, ...rest] = p.split(':')
      const impl = rest.slice(0, -1).join(':')
      return `${kind}${impl ? ` (${impl})` : ''}`
    })
    return shown.join(', ') + (ran.length > 4 ? ` and ${ran.length - 4} more` : '')
  }
  const [wa, wb] = [words(a), words(b)]
  if (!wa && !wb) return 'oneDNN ran nothing in either'
  if (wa === wb) return `oneDNN ran ${wa} in both`
  return `oneDNN ran ${wa ?? 'nothing'} in #${ta}, ${wb ?? 'nothing'} in #${tb}`
}

/** Both replays recorded oneDNN's log and neither ran a oneDNN primitive (reorders aside): oneDNN cannot be the cause. */
export function onednnRanNothing(e: {onednn?: {a: string[]; b: string[]}}): boolean {
  return !!e.onednn && [...e.onednn.a, ...e.onednn.b].every((p) => p.startsWith('reorder:'))
}

// ---- backward: the module whose backward first computes differently, by execution order ---------

/** One leaf module's backward call as a backward-order capture records it (capture.json backward_order). */
export interface BackwardCall {
  module: string
  type: string
  grad_output: (string | null)[]
  grad_input: (string | null)[]
}

export interface BackwardReplayPlan {
  kind: 'backward'
  step: number
  /** the module whose backward is replayed ("(loss)": the training loss) */
  module: string
  /** its class, as the backward order recorded it */
  type: string
  /** each side's recorded outputs: grad/<module>.<param> (the trace) and gin/<module>/<i> (the order capture) */
  recorded: {a: Record<string, string>; b: Record<string, string>}
}

const same = (x: readonly (string | null)[], y: readonly (string | null)[]) => x.length === y.length && x.every((v, i) => v === y[i])

/** The gradients of a module's own parameters (grad/<module>.<name>, no deeper path) at a step of a run. */
function ownGrads(run: RunArtifacts, step: number, module: string): Record<string, string> {
  const prefix = `grad/${module}.`
  return Object.fromEntries(
    (stepOf(run, step)?.entries ?? [])
      .filter((e) => e.name.startsWith(prefix) && !e.name.slice(prefix.length).includes('.'))
      .map((e) => [e.name, e.sha256]),
  )
}

/**
 * Walk two targets' backward calls in firing order (the reverse of the trace's parameter order): the
 * first module whose incoming gradient (grad_output) is identical but whose outgoing gradients (its
 * grad_input, or its own parameters' gradients in the trace) differ is where backward first computes
 * differently. An incoming gradient that already differs puts the drift between modules (code outside
 * any module, after the previous call).
 */
export function planBackwardReplay(
  a: RunArtifacts,
  b: RunArtifacts,
  step: number,
  orderA: readonly BackwardCall[],
  orderB: readonly BackwardCall[],
): {plan: BackwardReplayPlan} | {inputsDiffer: {module: string; after: string | null}} | {skip: string} {
  if (orderA.length === 0) return {skip: 'no module ran a backward at that step'}
  const seen = new Set<string>()
  for (let i = 0; i < orderA.length; i++) {
    const ca = orderA[i]!
    const cb = orderB[i]
    if (!cb || cb.module !== ca.module) return {skip: `the two targets call the modules' backward in a different order (at call ${i + 1})`}
    const first = !seen.has(ca.module)
    seen.add(ca.module)
    if (!same(ca.grad_output, cb.grad_output)) return {inputsDiffer: {module: ca.module, after: i > 0 ? orderA[i - 1]!.module : null}}
    const ga = first ? ownGrads(a, step, ca.module) : {}
    const gb = first ? ownGrads(b, step, ca.module) : {}
    const gradsDiffer = Object.keys(ga).some((n) => ga[n] !== gb[n])
    if (!same(ca.grad_input, cb.grad_input) || gradsDiffer) {
      if (!first) return {skip: `${ca.module} is called more than once in the step: its backward cannot be replayed alone`}
      const gin = (call: BackwardCall) =>
        Object.fromEntries(call.grad_input.flatMap((d, j) => (d === null ? [] : [[`gin/${ca.module}/${j}`, d] as const])))
      return {plan: {kind: 'backward', step, module: ca.module, type: ca.type, recorded: {a: {...ga, ...gin(ca)}, b: {...gb, ...gin(cb)}}}}
    }
  }
  return {skip: 'every module computes the same gradients from the same incoming gradient'}
}
