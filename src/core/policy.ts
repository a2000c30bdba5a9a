// The pre-merge policy: hold a new audit against a baseline report, target by target —
// did it run, is it reproducible, is its trace bitwise identical to the baseline, is the
// accuracy within tolerance, which fingerprint changes are allowed. Pure.

import {diffFingerprints, type FingerprintRow} from './fingerprint-diff.js'
import type {AuditReport, TargetRecord} from './report.js'
import type {Fingerprint} from './types.js'

export interface Policy {
  /** largest allowed |Δ mean validation accuracy| against the baseline (absolute, 0.005 = 0.5 pp) */
  accuracy_tolerance: number
  /** repeats inside each target must be bitwise identical (or within noise) */
  require_reproducible: boolean
  /** the trace must be bitwise identical to the baseline's (otherwise a difference only warns) */
  require_bitwise_baseline: boolean
  /** fingerprint paths whose change fails the check (`*` matches anything) */
  fail_on_changes: string[]
  /** fingerprint paths whose change is fine; any other change warns */
  allow_changes: string[]
  /** a failing path may still change its patch version (1.13.0 → 1.13.1) */
  allow_patch_bumps: boolean
  /** largest allowed |Δ mean validation RMSE| for workloads judged by RMSE (the lstm), in the data's units */
  rmse_tolerance?: number
  /** per workload, what differs from the rules above (e.g. {"cnn": {"require_bitwise_baseline": true}}) */
  workloads?: Record<string, Partial<WorkloadPolicy>>
}

/** The rules a workload can set for itself. */
export type WorkloadPolicy = Pick<Policy, 'accuracy_tolerance' | 'require_reproducible' | 'require_bitwise_baseline' | 'rmse_tolerance'>

export const DEFAULT_POLICY: Policy = {
  accuracy_tolerance: 0.005,
  require_reproducible: true,
  require_bitwise_baseline: false,
  fail_on_changes: [
    'torch.version',
    'torch.config.onednn',
    'torch.config.cuda_runtime',
    'torch.config.cudnn',
    'cuda.runtime',
    'cuda.cudnn',
    'cuda.driver',
    'libraries.blas:*',
    'libraries.lapack:*',
    'libraries.mkl:*',
    'libraries.onednn:*',
    'libraries.cudnn:*',
    'libraries.cublas:*',
    'python.version',
    'threads.intra_op',
    'threads.inter_op',
    'flags.*',
  ],
  allow_changes: ['distributions.*', 'os.kernel', 'probe_version', 'python.executable'],
  allow_patch_bumps: true,
  rmse_tolerance: 0.01,
}

export type CheckStatus = 'pass' | 'warn' | 'fail'

export interface PolicyCheck {
  name: string
  target: number | null
  /** the workload a check is about, in a check of several workloads */
  workload?: string
  status: CheckStatus
  detail: string
}

export interface PolicyOutcome {
  status: 'pass' | 'fail'
  checks: PolicyCheck[]
  /** one line per failed check, most important first: what the summary names as the cause */
  causes: string[]
}

export function globToRegExp(pattern: string): RegExp {
  const esc = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')
  return new RegExp(`^${esc}$`)
}

const matchesAny = (path: string, patterns: string[]) => patterns.some((p) => globToRegExp(p).test(path))

function version(v: unknown): [number, number, number] | null {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(String(v ?? ''))
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : null
}

export function isPatchBump(a: unknown, b: unknown): boolean {
  const va = version(a)
  const vb = version(b)
  return va !== null && vb !== null && va[0] === vb[0] && va[1] === vb[1]
}

export type ChangeClass = 'fail' | 'allowed' | 'warn'

export function classifyChange(row: FingerprintRow, policy: Policy): ChangeClass {
  if (matchesAny(row.path, policy.fail_on_changes)) {
    return policy.allow_patch_bumps && row.change === 'changed' && isPatchBump(row.a, row.b) ? 'allowed' : 'fail'
  }
  return matchesAny(row.path, policy.allow_changes) ? 'allowed' : 'warn'
}

const fmt = (v: unknown) => (v === undefined ? 'absent' : typeof v === 'string' ? v : JSON.stringify(v))
const pp = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)} pp`

function meanAccuracy(t: TargetRecord, workload: string | null = null): number | null {
  const accs = t.runs
    .filter(inWorkloadRun(workload))
    .map((r) => r.final.val_accuracy)
    .filter((a): a is number => typeof a === 'number')
  return accs.length ? accs.reduce((s, a) => s + a, 0) / accs.length : null
}

/**
 * When checks fail, which failure the summary names first (lower first): a target that did not
 * run, then what changed (fingerprint) and what it did to accuracy, then reproducibility, then
 * trace drift from the baseline.
 */
export const CAUSE_RANK = {ran: 0, fingerprint: 1, accuracy: 1, reproducible: 2, trace: 3} as const
type RuleName = keyof typeof CAUSE_RANK

interface RuleContext {
  current: AuditReport
  cur: TargetRecord
  /** the baseline's target in the same position, when it ran */
  base: TargetRecord | null
  policy: Policy
  /** the workload judged (per-workload rules), null in a report of one workload */
  workload: string | null
}

type RuleCheck = {status: CheckStatus; detail: string}

/** The policy as a table of named rules; each looks at one target and yields its check (or none). */
export const POLICY_RULES: {name: RuleName; needsBaseline: boolean; perWorkload: boolean; check(ctx: RuleContext): RuleCheck | null}[] = [
  {name: 'reproducible', needsBaseline: false, perWorkload: true, check: reproducibleRule},
  {name: 'fingerprint', needsBaseline: true, perWorkload: false, check: fingerprintRule},
  {name: 'trace', needsBaseline: true, perWorkload: true, check: traceRule},
  {name: 'accuracy', needsBaseline: true, perWorkload: true, check: accuracyRule},
]

const inWorkload = (workload: string | null) => (x: {workload?: string}) => workload === null || (x.workload ?? 'mlp') === workload

function reproducibleRule({current, cur, policy, workload}: RuleContext): RuleCheck {
  const repeats = current.comparisons.filter((c) => c.role === 'repeat' && c.a.target === cur.index).filter(inWorkload(workload))
  const noisy = repeats.filter((c) => !c.divergence.bitwise_identical)
  if (repeats.length === 0) return {status: 'warn', detail: 'one run only: use repeats ≥ 2 to check reproducibility'}
  if (noisy.length === 0) return {status: 'pass', detail: `${repeats.length + 1} repeats bitwise identical`}
  if (policy.require_reproducible)
    return {
      status: 'fail',
      detail: `${cur.name} is not reproducible: its repeats differ in ${noisy[0]!.divergence.counts.differing} trace entries`,
    }
  return {status: 'warn', detail: 'repeats are not bitwise identical'}
}

/** Fingerprint changes first: they name the cause of whatever else differs. */
function fingerprintRule({cur, base, policy}: RuleContext): RuleCheck {
  if (!base!.fingerprint || !cur.fingerprint)
    return {status: 'warn', detail: 'no fingerprint in the baseline report (made by an older repro?)'}
  const rows = diffFingerprints(base!.fingerprint as Fingerprint, cur.fingerprint as Fingerprint).rows.filter((r) => r.changed)
  const classified = rows.map((row) => ({row, cls: classifyChange(row, policy)}))
  const failing = classified.filter((c) => c.cls === 'fail').map((c) => c.row)
  const warning = classified.filter((c) => c.cls === 'warn').map((c) => c.row)
  const list = (rs: FingerprintRow[]) =>
    `${rs
      .slice(0, 5)
      .map((r) => `${r.path} ${fmt(r.a)} → ${fmt(r.b)}`)
      .join('; ')}${rs.length > 5 ? `; and ${rs.length - 5} more` : ''}`
  if (failing.length > 0) return {status: 'fail', detail: `not allowed by policy: ${list(failing)}`}
  if (warning.length > 0) return {status: 'warn', detail: `changed: ${list(warning)}`}
  return {status: 'pass', detail: rows.length ? `${rows.length} allowed change(s)` : 'unchanged'}
}

function traceRule({cur, base, policy, workload}: RuleContext): RuleCheck {
  const digest = (t: TargetRecord) =>
    workload === null ? t.trace_digest : (t.trace_digests?.[workload] ?? (workload === 'mlp' ? t.trace_digest : undefined))
  const cd = digest(cur)
  const bd = digest(base!)
  if (!cd || !bd) return {status: 'warn', detail: 'no trace digest in the baseline report'}
  if (cd.root === bd.root) return {status: 'pass', detail: 'bitwise identical to the baseline'}
  const first = cd.steps.find((s, k) => bd.steps[k]?.root !== s.root || String(bd.steps[k]?.step) !== String(s.step))
  const detail = `the training trace differs from the baseline from step ${first ? first.step : '?'} on`
  return {status: policy.require_bitwise_baseline ? 'fail' : 'warn', detail}
}

function accuracyRule({cur, base, policy, workload}: RuleContext): RuleCheck {
  if (workload !== null && cur.runs.some((r) => r.workload === workload && r.final.val_rmse !== null && r.final.val_rmse !== undefined)) {
    return rmseRule(cur, base!, policy, workload)
  }
  const a = meanAccuracy(base!, workload)
  const b = meanAccuracy(cur, workload)
  const pct = (x: number) => `${(100 * x).toFixed(2)} %`
  const tol = `${(100 * policy.accuracy_tolerance).toFixed(2)} pp`
  if (a === null || b === null) return {status: 'warn', detail: 'no accuracy to compare'}
  if (Math.abs(b - a) <= policy.accuracy_tolerance)
    return {status: 'pass', detail: `${pct(b)} vs ${pct(a)} (${pp(b - a)}, tolerance ±${tol})`}
  return {status: 'fail', detail: `validation accuracy ${pct(b)} vs baseline ${pct(a)} (${pp(b - a)}) is beyond ±${tol}`}
}

const inWorkloadRun = (workload: string | null) => (r: {workload?: string}) => workload === null || (r.workload ?? 'mlp') === workload

/** A workload judged by RMSE (lower is better): the absolute change of its mean against rmse_tolerance. */
function rmseRule(cur: TargetRecord, base: TargetRecord, policy: Policy, workload: string): RuleCheck {
  const mean = (t: TargetRecord) => {
    const xs = t.runs
      .filter(inWorkloadRun(workload))
      .map((r) => r.final.val_rmse)
      .filter((x): x is number => typeof x === 'number')
    return xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null
  }
  const a = mean(base)
  const b = mean(cur)
  const tol = policy.rmse_tolerance ?? DEFAULT_POLICY.rmse_tolerance!
  if (a === null || b === null) return {status: 'warn', detail: 'no RMSE to compare'}
  const d = b - a
  const text = `validation RMSE ${b.toPrecision(4)} vs ${a.toPrecision(4)} (${d >= 0 ? '+' : ''}${d.toPrecision(3)}, tolerance ±${tol})`
  return Math.abs(d) <= tol ? {status: 'pass', detail: text} : {status: 'fail', detail: `${text} is beyond tolerance`}
}

/** The policy for one workload: its own overrides over the general rules. */
export function policyFor(policy: Policy, workload: string | null): Policy {
  const own = workload === null ? undefined : policy.workloads?.[workload]
  return own ? {...policy, ...own} : policy
}

export function evaluatePolicy(current: AuditReport, baseline: AuditReport, policy: Policy): PolicyOutcome {
  const checks: PolicyCheck[] = []
  const causes: {rank: number; text: string}[] = []
  const add = (name: RuleName, target: number | null, c: RuleCheck, workload: string | null = null) => {
    checks.push(workload === null ? {name, target, ...c} : {name, target, workload, ...c})
    if (c.status === 'fail') causes.push({rank: CAUSE_RANK[name], text: c.detail})
  }
  const baseTargets = baseline.targets.filter((t) => t.role === 'target')
  const curTargets = current.targets.filter((t) => t.role === 'target')
  if (baseTargets.length !== curTargets.length) {
    checks.push({
      name: 'targets',
      target: null,
      status: 'warn',
      detail: `the baseline has ${baseTargets.length} target(s), this run ${curTargets.length}; compared in order`,
    })
  }
  for (const [i, cur] of curTargets.entries()) {
    if (cur.status !== 'ok') {
      add('ran', cur.index, {status: 'fail', detail: `${cur.name} did not run: ${cur.error?.line ?? 'error'}`})
      continue
    }
    add('ran', cur.index, {status: 'pass', detail: `${cur.runs.length} run(s)`})
    const base = baseTargets[i]
    const workloads = current.by_workload ? current.by_workload.map((w) => w.workload) : [null]
    for (const rule of POLICY_RULES) {
      for (const workload of rule.perWorkload ? workloads : [null]) {
        const ctx: RuleContext = {current, cur, base: base?.status === 'ok' ? base : null, policy: policyFor(policy, workload), workload}
        if (rule.needsBaseline && !ctx.base) continue
        const c = rule.check(ctx)
        if (c) add(rule.name, cur.index, workload === null ? c : {status: c.status, detail: `${workload}: ${c.detail}`}, workload)
      }
    }
    if (!base) checks.push({name: 'baseline', target: cur.index, status: 'warn', detail: 'no baseline target to compare with'})
    else if (base.status !== 'ok')
      checks.push({name: 'baseline', target: cur.index, status: 'warn', detail: 'the baseline target did not run'})
  }
  return {
    status: checks.some((c) => c.status === 'fail') ? 'fail' : 'pass',
    checks,
    causes: causes.sort((x, y) => x.rank - y.rank).map((c) => c.text),
  }
}
