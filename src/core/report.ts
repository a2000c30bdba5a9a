// The one report object every renderer walks (terminal, JSON; Markdown/HTML/JUnit later), and
// the verdict that decides the exit code. Pure: built from comparisons, no I/O.

import {replicaNotes} from './distributed.js'
import type {FingerprintRow} from './fingerprint-diff.js'
import type {TraceComparison} from './trace-compare.js'
import type {ResumeSummary} from './resume.js'
import type {Fingerprint, Knobs, RunOutcome} from './types.js'

export const REPORT_SCHEMA = 'repro.report/1'

export interface TargetError {
  message: string
  hint: string
  line: string
}

export interface RunRecord {
  /** the built-in workload this run trained (absent in reports made before workloads: mlp) */
  workload?: string
  repeat: number
  dir: string
  seconds: number
  /** reused from the run cache (same target identity, probe, config and host) */
  cached?: boolean
  /** taken from an earlier audit's --out as it was (repro audit --resume) */
  resumed?: boolean
  final: RunOutcome['final']
  epochs: RunOutcome['epochs']
  knobs_effective: RunOutcome['knobs_effective']
  timings: Record<string, number>
  /** with deterministic=warn: the nondeterministic ops torch warned about in this run */
  alerts?: RunOutcome['alerts']
  /** the attention workload: which attention path the target's torch took */
  attention_path?: string | null
  /** a compiled run: graphs, graph breaks and the fused kernels */
  compiled?: RunOutcome['compiled']
  /** a user's script: how it ran, the knobs it set itself, the metrics it reported */
  script?: RunOutcome['script']
  knobs_overridden?: string[]
  metrics?: Record<string, number>
  /** world_size > 1: the ranks and the replica check */
  distributed?: RunOutcome['distributed']
}

/** Per-step digests of a run's trace (src/artifacts/trace-digest.ts): enough to hold a run against a baseline. */
export interface TraceDigest {
  root: string
  steps: {step: string | number; root: string}[]
}

export interface TargetRecord {
  index: number
  name: string
  kind: string
  /** 'target' counts towards the verdict; 'variant' is an informational knob variant */
  role: 'target' | 'variant'
  knobs_requested: Knobs
  identity: {reference: string; details: Record<string, string | number | boolean | null>} | null
  status: 'ok' | 'error'
  /** the first failure (a target fails as a whole when its interpreter or image is unusable) */
  error: TargetError | null
  /** with several workloads: each workload that failed in this target (the others still report) */
  errors?: (TargetError & {workload: string})[]
  runs: RunRecord[]
  /** the environment fingerprint of the first run (what `repro check` diffs against a baseline) */
  fingerprint?: Fingerprint
  /** digests of the first run's trace (the first workload's) */
  trace_digest?: TraceDigest
  /** with several workloads: each workload's first-run trace digests */
  trace_digests?: Record<string, TraceDigest>
}

export interface DivergenceSummary {
  bitwise_identical: boolean
  first_divergence: TraceComparison['first_divergence']
  counts: TraceComparison['counts']
  /** the most-diverged entries with stored values, worst first (capped) */
  worst: {name: string; phase: string; max_abs: number; rel_l2: number; step: string | number}[]
  /** every differing (entry, stored step) with values on both sides, in trace order (capped): the divergence map */
  map?: {name: string; phase: string; step: string | number; max_abs: number}[]
}

export interface PairRecord {
  /** the workload both runs trained (absent in reports made before workloads: mlp) */
  workload?: string
  role: 'repeat' | 'cross' | 'variant'
  a: {target: number; repeat: number; name: string}
  b: {target: number; repeat: number; name: string}
  divergence: DivergenceSummary
  outcome: {
    val_accuracy_a: number | null
    val_accuracy_b: number | null
    accuracy_delta: number | null
    val_loss_delta: number | null
    /** workloads judged by validation RMSE (lstm) */
    val_rmse_a?: number | null
    val_rmse_b?: number | null
    rmse_delta?: number | null
  }
  /** changed fingerprint rows only (unchanged rows are noise in a report) */
  fingerprint_changes: FingerprintRow[]
  fingerprint_changed: number
  /** differing entries within / beyond the targets' noise floor (only when a floor is non-zero) */
  noise?: {within: number; beyond: number}
}

export type VerdictStatus = 'reproducible' | 'drift' | 'error'

export interface Verdict {
  status: VerdictStatus
  exit_code: 0 | 1 | 2
  headline: string
}

/** Repeats inside one target: bitwise reproducible, or the per-entry spread that is its noise. */
export interface NoiseFloor {
  target: number
  name: string
  repeats: number
  bitwise: boolean
  /** entries that differ between repeats (0 when bitwise) */
  differing_entries: number
  /** per entry name, the largest max-abs difference seen between repeats (stored steps) */
  spread: {name: string; max_abs: number}[]
}

/** Training with N seeds per target: is the accuracy difference bigger than seed-to-seed spread? */
export interface SeedVariance {
  seeds: number[]
  /** the outcome judged (absent: val_accuracy); `accuracy` below holds this metric's statistics */
  metric?: 'val_accuracy' | 'val_rmse'
  per_target: {
    target: number
    name: string
    accuracy: {n: number; mean: number | null; sd: number | null}
    loss: {n: number; mean: number | null; sd: number | null}
  }[]
  /** each target against the first: Welch difference of mean accuracy with a 95 % interval */
  differences: {a: number; b: number; diff: number | null; ci95: [number, number] | null; significant: boolean; sentence: string}[]
}

/** One counterfactual rerun: target `target` rerun with `knob` set to the other target's value. */
export interface Experiment {
  id: string
  /** a counterfactual rerun with knobs aligned (absent in reports made before replays), or an op replay */
  kind?: 'knob' | 'replay'
  /** replay: the op replayed on identical inputs in each target (e.g. "Adam update of step 1") */
  op?: string
  /** replay: toggles replayed in the second target (mkldnn off, ATEN_CPU_CAPABILITY=…) and what each did */
  toggles?: {toggle: string; outcome: 'bitwise' | 'closer' | 'unchanged' | 'unavailable' | 'failed'; max_abs: number | null}[]
  /** replay: the oneDNN primitives each side's replay ran (a: the first target's), from oneDNN's verbose log */
  onednn?: {a: string[]; b: string[]}
  knobs: {name: string; from: unknown; to: unknown}[]
  target: number
  against: number
  /**
   * knob: disappears / moves-later / stays / failed. replay: localized (identical inputs, different
   * outputs), cleared (identical outputs), inputs-differ (no replay: the drift is earlier),
   * not-faithful (a replay did not reproduce its own target's recorded bytes), failed
   */
  outcome: 'disappears' | 'moves-later' | 'stays' | 'failed' | 'localized' | 'cleared' | 'inputs-differ' | 'not-faithful'
  first_divergence_before: {step: string | number; entry: string} | null
  first_divergence_after: {step: string | number; entry: string} | null
  note: string
}

export interface Suspect {
  rank: number
  kind: 'knob' | 'library' | 'nondeterminism' | 'seed-variance'
  name: string
  a: string | null
  b: string | null
  confidence: 'high' | 'medium' | 'low'
  /** the experiment (or observation) that supports it, in one sentence */
  evidence: string
  /** plain-words explanation from the knowledge base, with its public source */
  explanation: string | null
  source: string | null
}

export interface Attribution {
  noise_floor: NoiseFloor[]
  seeds: SeedVariance | null
  experiments: Experiment[]
  /** where the first divergence starts: forward/backward/update and which module type */
  where: {phase: string; module_type: string | null; step: string | number; entry: string} | null
  /** where the divergence starts once every differing knob is aligned, when that moved it */
  residual?: {phase: string; module_type: string | null; step: string | number; entry: string} | null
  suspects: Suspect[]
  /** knobs that differ between targets but that this workload (or this device) does not exercise */
  unexercised?: {name: string; a: string; b: string; note: string}[]
  /**
   * wall seconds the experiments took, by kind: the zoom reruns, the counterfactual (knob) reruns,
   * and the op replays with their capture reruns (absent when no experiment ran, and in reports
   * made before it was recorded)
   */
  explain_seconds?: {zoom: number; knob_reruns: number; replays: number}
}

/** One workload of an audit of several: its verdict and its attribution. */
export interface WorkloadResult {
  workload: string
  /** what the workload's outcome is judged by */
  outcome_metric: 'val_accuracy' | 'val_rmse'
  verdict: Verdict
  attribution?: Attribution
}

export interface AuditReport {
  schema: typeof REPORT_SCHEMA
  tool: {name: 'repro'; version: string}
  created: string
  command: string
  host: unknown
  git: unknown
  settings: {
    repeats: number
    seed: number
    seeds?: number
    tolerance?: {fp32: {rtol: number; atol: number}; fp64: {rtol: number; atol: number}}
    epochs: number
    data_source: string
    data_sha256: string
    out_dir: string
    /** the workloads audited (absent in reports made before workloads: mlp only) */
    workloads?: string[]
  }
  targets: TargetRecord[]
  comparisons: PairRecord[]
  /** present when the audit explained its drift (repro audit of one workload; absent for repro compare) */
  attribution?: Attribution
  /** an audit of several workloads: each workload's own verdict and attribution */
  by_workload?: WorkloadResult[]
  /** repro audit --resume: how many of the planned runs were taken from --out, and why the others ran again */
  resume?: ResumeSummary
  verdict: Verdict
}

export const MAX_MAP_CELLS = 2000

export function summarizeDivergence(cmp: TraceComparison, maxWorst = 10): DivergenceSummary {
  const measured = cmp.differing.filter((d) => d.metrics !== null)
  const worst = measured
    .map((d) => ({name: d.name, phase: d.phase, step: d.step, max_abs: d.metrics!.max_abs, rel_l2: d.metrics!.rel_l2}))
    .sort((x, y) => y.max_abs - x.max_abs)
    .slice(0, maxWorst)
  const map = measured.slice(0, MAX_MAP_CELLS).map((d) => ({name: d.name, phase: d.phase, step: d.step, max_abs: d.metrics!.max_abs}))
  return {bitwise_identical: cmp.bitwise_identical, first_divergence: cmp.first_divergence, counts: cmp.counts, worst, map}
}

/**
 * The verdict: an incomplete audit (a target failed) is an environment error (2); otherwise a
 * target whose repeats are not bitwise identical is not reproducible (1) — however many targets
 * the audit has: noise that is the whole signal is no noise floor, and a policy (repro check's
 * require_reproducible) is where it may be allowed — and a cross-target comparison drifts (1)
 * when it is not bitwise identical and goes beyond the noise floor its targets' repeats show.
 * Variant comparisons (the no-target demo's knob variant) inform but never fail the audit.
 */
export function decideVerdict(targets: TargetRecord[], comparisons: PairRecord[], attribution?: Attribution): Verdict {
  const failed = targets.filter((t) => t.status === 'error')
  const counted = comparisons.filter((c) => c.role !== 'variant')
  const crossPairs = counted.filter((c) => c.role === 'cross')
  const beyondNoise = (c: PairRecord) => !c.divergence.bitwise_identical && (c.noise === undefined || c.noise.beyond > 0)
  const repeatsDrift = counted.filter((c) => c.role === 'repeat' && !c.divergence.bitwise_identical)
  const crossDrift = crossPairs.filter(beyondNoise)
  const drifting = [...repeatsDrift, ...crossDrift]
  const top = attribution?.suspects[0]
  const suspect = top
    ? `; top suspect: ${top.name}${top.a !== null || top.b !== null ? ` (${top.a ?? '—'} → ${top.b ?? '—'})` : ''}, ${top.confidence} confidence`
    : ''
  if (failed.length > 0) {
    const names = failed.map((t) => t.name).join(', ')
    return {
      status: 'error',
      exit_code: 2,
      headline: `${failed.length} of ${targets.length} target(s) could not be audited (${names})${drifting.length ? `; ${drifting.length} comparison(s) drifted among the rest` : ''}`,
    }
  }
  if (comparisons.length === 0) {
    // one target run once: nothing to compare, so nothing is claimed about reproducibility
    return {
      status: 'reproducible',
      exit_code: 0,
      headline: `ran, nothing compared: ${targets.length} target(s), one run each — add --repeats 2 to test reproducibility, or a second target to compare against`,
    }
  }
  // a data-parallel run whose ranks' parameters part: the replicas of one training disagree
  const replicas = replicaNotes({targets}).find((n) => n.drift)
  if (replicas) return {status: 'drift', exit_code: 1, headline: `not reproducible within a target: ${replicas.text}${suspect}`}
  if (drifting.length === 0) {
    const variant = comparisons.find((c) => c.role === 'variant')
    const note = variant
      ? variant.divergence.bitwise_identical
        ? `; the knob variant (${variant.b.name}) is bitwise identical too`
        : `; the knob variant (${variant.b.name}) diverges at ${describeFirst(variant)}${suspect}`
      : ''
    const u = attribution?.unexercised ?? []
    const unexercised = u.length
      ? `; ${u.map((x) => x.name).join(', ')} ${u.length > 1 ? 'differ but are' : 'differs but is'} not exercised here`
      : ''
    return {
      status: 'reproducible',
      exit_code: 0,
      headline: `bitwise reproducible: ${counted.length} comparison(s), every trace entry identical${note}${unexercised}`,
    }
  }
  const first = drifting[0]!
  const kind = repeatsDrift.length > 0 ? 'not reproducible within a target' : 'drift between targets'
  // repeats that differ, and cross-target differences all within the noise they show
  const withinNoise =
    repeatsDrift.length > 0 && crossPairs.length > 0 && crossDrift.length === 0
      ? `; every cross-target difference stays within that noise (${repeatsDrift.length} repeat pair(s) differ)`
      : ''
  return {
    status: 'drift',
    exit_code: 1,
    headline: `${kind}: ${first.a.name} vs ${first.b.name} first diverge at ${describeFirst(first)}${withinNoise}${suspect}`,
  }
}

export function describeFirst(c: PairRecord): string {
  const fd = c.divergence.first_divergence
  if (!fd) return 'no entry'
  return `step ${fd.step}, ${fd.entry} (${fd.phase})`
}

/** The seconds of the experiments' probe runs by kind, summed (they overlap with --jobs > 1), in one line (null when none ran or the report predates it). */
export function explainSecondsLine(at: Attribution): string | null {
  const s = at.explain_seconds
  if (!s) return null
  const total = s.zoom + s.knob_reruns + s.replays
  const parts = [
    ...(s.zoom > 0 ? [`zoom ${s.zoom.toFixed(1)} s`] : []),
    ...(s.knob_reruns > 0 ? [`knob reruns ${s.knob_reruns.toFixed(1)} s`] : []),
    ...(s.replays > 0 ? [`op replays ${s.replays.toFixed(1)} s`] : []),
  ]
  return `Experiment runs took ${total.toFixed(1)} s${parts.length ? `: ${parts.join(', ')}` : ''}`
}
