// The compare stage, pure: which runs are compared (repeats inside each target, each target's
// first run against the first target's), and one comparison per pair — trace, fingerprint and
// outcome — as the report records it.

import {acrossWorldSizes} from './distributed.js'
import {diffFingerprints} from './fingerprint-diff.js'
import {type PairRecord, summarizeDivergence, type TargetRecord} from './report.js'
import {compareTraces, isStateEntry, type TraceComparison} from './trace-compare.js'
import {DEFAULT_FP32_TOLERANCE, DEFAULT_FP64_TOLERANCE, type RunArtifacts} from './types.js'

export const TOLERANCE = {fp32: DEFAULT_FP32_TOLERANCE, fp64: DEFAULT_FP64_TOLERANCE}

/** One compared pair: what the report keeps, and the full comparison attribution reads. */
export interface ComparedPair {
  record: PairRecord
  cmp: TraceComparison
}

export interface Comparisons {
  /** every pair in report order: repeats first, then cross/variant pairs */
  records: PairRecord[]
  /** per target index, its repeats (2…n) against repeat 1 */
  repeats: Map<number, TraceComparison[]>
  /** each target against the base target */
  cross: ComparedPair[]
}

export function runRef(t: TargetRecord, repeat: number): PairRecord['a'] {
  return {target: t.index, repeat, name: `${t.name} r${repeat}`}
}

export function comparePair(
  role: PairRecord['role'],
  aRef: PairRecord['a'],
  a: RunArtifacts,
  bRef: PairRecord['b'],
  b: RunArtifacts,
): ComparedPair {
  // a script at two world sizes: each rank's forward sees its own slice, so only the state compares
  const opts = acrossWorldSizes(a.outcome, b.outcome) ? {...TOLERANCE, only: isStateEntry} : TOLERANCE
  const cmp = compareTraces(a.trace, a.values, b.trace, b.values, opts)
  const changes = diffFingerprints(a.fingerprint, b.fingerprint).rows.filter((row) => row.changed)
  const accA = a.outcome.final.val_accuracy
  const accB = b.outcome.final.val_accuracy
  const lossA = a.outcome.final.val_loss
  const lossB = b.outcome.final.val_loss
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
      ...rmse(a.outcome.final.val_rmse ?? null, b.outcome.final.val_rmse ?? null, a.outcome.outcome_metric === 'val_rmse'),
    },
    fingerprint_changes: changes,
    fingerprint_changed: changes.length,
  }
  return {record, cmp}
}

/**
 * Compare what was collected: repeats inside each target, then every other target against the
 * first target that ran (the base; a knob variant is compared as 'variant', not 'cross').
 */
export function compareAll(records: TargetRecord[], runs: ReadonlyMap<number, RunArtifacts[]>): Comparisons {
  const out: Comparisons = {records: [], repeats: new Map(), cross: []}
  for (const rec of records) {
    const rs = runs.get(rec.index)
    if (!rs) continue
    for (let r = 1; r < rs.length; r++) {
      const {record, cmp} = comparePair('repeat', runRef(rec, 1), rs[0]!, runRef(rec, r + 1), rs[r]!)
      out.records.push(record)
      out.repeats.set(rec.index, [...(out.repeats.get(rec.index) ?? []), cmp])
    }
  }
  const base = records.find((t) => runs.has(t.index) && t.role === 'target')
  if (!base) return out
  for (const rec of records) {
    if (rec === base || !runs.has(rec.index)) continue
    const role = rec.role === 'variant' ? 'variant' : 'cross'
    const pair = comparePair(role, runRef(base, 1), runs.get(base.index)![0]!, runRef(rec, 1), runs.get(rec.index)![0]!)
    out.records.push(pair.record)
    out.cross.push(pair)
  }
  return out
}

function rmse(a: number | null, b: number | null, judged: boolean) {
  return judged ? {val_rmse_a: a, val_rmse_b: b, rmse_delta: a !== null && b !== null ? b - a : null} : {}
}
