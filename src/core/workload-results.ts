// An audit of several workloads: each workload is judged on its own comparisons (a target may
// fail in one workload and run in the others), and one verdict sums them up across workloads
// ("cnn and attention diverge; mlp and lstm bitwise identical"). Pure.

import {
  type Attribution,
  type AuditReport,
  decideVerdict,
  type PairRecord,
  type TargetRecord,
  type Verdict,
  type WorkloadResult,
} from './report.js'

/** The workload of a run or pair; reports made before workloads only had the mlp. */
export const workloadOf = (x: {workload?: string}): string => x.workload ?? 'mlp'

/** The target records as one workload saw them: that workload's runs, failed where that workload failed. */
export function targetsForWorkload(targets: TargetRecord[], workload: string): TargetRecord[] {
  return targets.map((t) => {
    const runs = t.runs.filter((r) => workloadOf(r) === workload)
    const own = t.errors?.find((e) => e.workload === workload)
    // a failure that is not any one workload's (no interpreter, no image) fails every workload
    const whole = t.error !== null && !t.errors?.length
    const error = own ? {message: own.message, hint: own.hint, line: own.line} : whole ? t.error : null
    return {...t, runs, status: error ? 'error' : 'ok', error}
  })
}

export function pairsForWorkload(pairs: PairRecord[], workload: string): PairRecord[] {
  return pairs.filter((p) => workloadOf(p) === workload)
}

/** Each workload's verdict from its own comparisons and attribution. */
export function workloadResults(
  targets: TargetRecord[],
  pairs: PairRecord[],
  workloads: {workload: string; outcome_metric: WorkloadResult['outcome_metric']; attribution?: Attribution}[],
): WorkloadResult[] {
  return workloads.map(({workload, outcome_metric, attribution}) => {
    const verdict = decideVerdict(targetsForWorkload(targets, workload), pairsForWorkload(pairs, workload), attribution)
    return attribution ? {workload, outcome_metric, verdict, attribution} : {workload, outcome_metric, verdict}
  })
}

const list = (names: string[]) => (names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`)

/** Where a drifting workload first diverges: `cnn at step 0, fwd/stem.conv`. */
function firstDivergenceOf(w: WorkloadResult, pairs: PairRecord[]): string {
  const counted = pairsForWorkload(pairs, w.workload).filter((p) => p.role !== 'variant' && !p.divergence.bitwise_identical)
  // a target's own repeats first: that is the verdict's reason when they differ
  const fd = (counted.find((p) => p.role === 'repeat') ?? counted.find((p) => p.role === 'cross') ?? counted[0])?.divergence
    .first_divergence
  return fd ? `${w.workload} at step ${fd.step}, ${fd.entry}` : w.workload
}

/** One verdict across workloads: any failure → 2, else any drift → 1, else 0; the headline names each group. */
export function verdictAcrossWorkloads(results: WorkloadResult[], pairs: PairRecord[]): Verdict {
  const by = (status: Verdict['status']) => results.filter((r) => r.verdict.status === status)
  const failed = by('error')
  const drifting = by('drift')
  const fine = by('reproducible')
  const parts: string[] = []
  if (drifting.length)
    parts.push(
      `${list(drifting.map((w) => w.workload))} ${drifting.length > 1 ? 'diverge' : 'diverges'} (${drifting.map((w) => firstDivergenceOf(w, pairs)).join('; ')})`,
    )
  const bitwise = fine.filter((w) => w.verdict.headline.startsWith('bitwise'))
  const unclaimed = fine.filter((w) => !w.verdict.headline.startsWith('bitwise'))
  if (bitwise.length) parts.push(`${list(bitwise.map((w) => w.workload))} bitwise identical`)
  if (unclaimed.length) parts.push(`${list(unclaimed.map((w) => w.workload))} ran, nothing compared`)
  if (failed.length) parts.push(`${list(failed.map((w) => w.workload))} could not run everywhere`)
  const top = drifting.find((w) => w.attribution?.suspects[0])
  const s = top?.attribution?.suspects[0]
  const suspect = s
    ? `; top suspect (${top!.workload}): ${s.name}${s.a !== null || s.b !== null ? ` (${s.a ?? '—'} → ${s.b ?? '—'})` : ''}, ${s.confidence} confidence`
    : ''
  const headline = `${parts.join('; ')}${suspect}`
  if (failed.length) return {status: 'error', exit_code: 2, headline}
  if (drifting.length) return {status: 'drift', exit_code: 1, headline}
  return {status: 'reproducible', exit_code: 0, headline}
}

/** The report as one workload of several saw it: its targets, comparisons, attribution and verdict. */
export function workloadView(report: AuditReport, w: WorkloadResult): AuditReport {
  const {by_workload: _all, ...rest} = report
  const view: AuditReport = {
    ...rest,
    targets: targetsForWorkload(report.targets, w.workload),
    comparisons: pairsForWorkload(report.comparisons, w.workload),
    verdict: w.verdict,
  }
  if (w.attribution) view.attribution = w.attribution
  else delete view.attribution
  return view
}
