// Op replay (issue 27), its first slice: a drift whose first divergence is in an optimizer update.
// Every input of that update is stored (the parameters and optimizer state after the previous
// step, the gradients of this one); when they are bitwise identical in both targets, the update
// is replayed on exactly those bytes in each target (python -m repro_probe replay). Different
// outputs from identical inputs localize the drift to the update op; identical outputs clear it.
// A replay that does not reproduce its own target's recorded bytes proves nothing. Pure: the
// plan and the judgement; app/explain.ts runs it.

import {storedKey, type RunArtifacts, type TensorValues, type TraceStep} from './types.js'
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
