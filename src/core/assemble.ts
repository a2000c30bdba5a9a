// The report stage, pure: the envelope around the stages' results and the verdict — one
// workload's, or, for an audit of several, each workload's and one across them.

import {
  type Attribution,
  type AuditReport,
  decideVerdict,
  type PairRecord,
  REPORT_SCHEMA,
  type TargetRecord,
  type WorkloadResult,
} from './report.js'
import {DEFAULT_FP32_TOLERANCE, DEFAULT_FP64_TOLERANCE} from './types.js'
import {verdictAcrossWorkloads, workloadResults} from './workload-results.js'

/** Everything the report stage needs; the report object adds the schema, tolerances and verdicts. */
export interface ReportParts {
  created: string
  version: string
  command: string
  host: unknown
  git: unknown
  settings: Omit<AuditReport['settings'], 'tolerance'>
  targets: TargetRecord[]
  comparisons: PairRecord[]
  /** each audited workload with its attribution (one entry: a single-workload audit) */
  workloads: {workload: string; outcome_metric: WorkloadResult['outcome_metric']; attribution?: Attribution}[]
  /** repro audit --resume */
  resume?: AuditReport['resume']
}

export function assembleAuditReport(parts: ReportParts): AuditReport {
  const s = parts.settings
  const report: AuditReport = {
    schema: REPORT_SCHEMA,
    tool: {name: 'repro', version: parts.version},
    created: parts.created,
    command: parts.command,
    host: parts.host,
    git: parts.git,
    settings: {
      repeats: s.repeats,
      seed: s.seed,
      seeds: s.seeds,
      tolerance: {fp32: DEFAULT_FP32_TOLERANCE, fp64: DEFAULT_FP64_TOLERANCE},
      epochs: s.epochs,
      data_source: s.data_source,
      data_sha256: s.data_sha256,
      out_dir: s.out_dir,
      workloads: s.workloads,
    },
    targets: parts.targets,
    comparisons: parts.comparisons,
    verdict: {status: 'reproducible', exit_code: 0, headline: ''},
  }
  if (s.workloads === undefined) delete report.settings.workloads
  if (parts.resume) report.resume = parts.resume
  if (parts.workloads.length <= 1) {
    const attribution = parts.workloads[0]?.attribution
    if (attribution) report.attribution = attribution
    report.verdict = decideVerdict(parts.targets, parts.comparisons, attribution)
    // keep the key order of reports made before workloads (attribution before verdict)
    return reorder(report)
  }
  report.by_workload = workloadResults(parts.targets, parts.comparisons, parts.workloads)
  report.verdict = verdictAcrossWorkloads(report.by_workload, parts.comparisons)
  return reorder(report)
}

function reorder(r: AuditReport): AuditReport {
  const {verdict, ...rest} = r
  return {...rest, verdict}
}
