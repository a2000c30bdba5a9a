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
}

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
}

export type CheckStatus = 'pass' | 'warn' | 'fail'

export interface PolicyCheck {
  name: string
  target: number | null
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

function meanAccuracy(t: TargetRecord): number | null {
  const accs = t.runs.map((r) => r.final.val_accuracy).filter((a): a is number => typeof a === 'number')
  return accs.length ? accs.reduce((s, a) => s + a, 0) / accs.length : null
}

export function evaluatePolicy(current: AuditReport, baseline: AuditReport, policy: Policy): PolicyOutcome {
  const checks: PolicyCheck[] = []
  const causes: {rank: number; text: string}[] = []
  const fail = (name: string, target: number | null, detail: string, rank: number) => {
    checks.push({name, target, status: 'fail', detail})
    causes.push({rank, text: detail})
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
  curTargets.forEach((cur, i) => {
    const t = cur.index
    const base = baseTargets[i]
    if (cur.status !== 'ok') {
      fail('ran', t, `${cur.name} did not run: ${cur.error?.line ?? 'error'}`, 0)
      return
    }
    checks.push({name: 'ran', target: t, status: 'pass', detail: `${cur.runs.length} run(s)`})
    const repeats = current.comparisons.filter((c) => c.role === 'repeat' && c.a.target === t)
    const noisy = repeats.filter((c) => !c.divergence.bitwise_identical)
    if (repeats.length === 0)
      checks.push({name: 'reproducible', target: t, status: 'warn', detail: 'one run only: use repeats ≥ 2 to check reproducibility'})
    else if (noisy.length === 0)
      checks.push({name: 'reproducible', target: t, status: 'pass', detail: `${repeats.length + 1} repeats bitwise identical`})
    else if (policy.require_reproducible)
      fail(
        'reproducible',
        t,
        `${cur.name} is not reproducible: its repeats differ in ${noisy[0]!.divergence.counts.differing} trace entries`,
        2,
      )
    else checks.push({name: 'reproducible', target: t, status: 'warn', detail: 'repeats are not bitwise identical'})

    if (!base) {
      checks.push({name: 'baseline', target: t, status: 'warn', detail: 'no baseline target to compare with'})
      return
    }
    if (base.status !== 'ok') {
      checks.push({name: 'baseline', target: t, status: 'warn', detail: 'the baseline target did not run'})
      return
    }

    // Fingerprint changes first: they name the cause of whatever else differs.
    const rows =
      base.fingerprint && cur.fingerprint
        ? diffFingerprints(base.fingerprint as Fingerprint, cur.fingerprint as Fingerprint).rows.filter((r) => r.changed)
        : []
    const classified = rows.map((row) => ({row, cls: classifyChange(row, policy)}))
    const failing = classified.filter((c) => c.cls === 'fail')
    const warning = classified.filter((c) => c.cls === 'warn')
    const describe = (r: FingerprintRow) => `${r.path} ${fmt(r.a)} → ${fmt(r.b)}`
    if (!base.fingerprint || !cur.fingerprint)
      checks.push({
        name: 'fingerprint',
        target: t,
        status: 'warn',
        detail: 'no fingerprint in the baseline report (made by an older repro?)',
      })
    else if (failing.length > 0)
      fail(
        'fingerprint',
        t,
        `not allowed by policy: ${failing
          .slice(0, 5)
          .map((c) => describe(c.row))
          .join('; ')}${failing.length > 5 ? `; and ${failing.length - 5} more` : ''}`,
        1,
      )
    else if (warning.length > 0)
      checks.push({
        name: 'fingerprint',
        target: t,
        status: 'warn',
        detail: `changed: ${warning
          .slice(0, 5)
          .map((c) => describe(c.row))
          .join('; ')}${warning.length > 5 ? `; and ${warning.length - 5} more` : ''}`,
      })
    else
      checks.push({name: 'fingerprint', target: t, status: 'pass', detail: rows.length ? `${rows.length} allowed change(s)` : 'unchanged'})

    const cd = cur.trace_digest
    const bd = base.trace_digest
    if (!cd || !bd) checks.push({name: 'trace', target: t, status: 'warn', detail: 'no trace digest in the baseline report'})
    else if (cd.root === bd.root) checks.push({name: 'trace', target: t, status: 'pass', detail: 'bitwise identical to the baseline'})
    else {
      const first = cd.steps.find((s, k) => bd.steps[k]?.root !== s.root || String(bd.steps[k]?.step) !== String(s.step))
      const detail = `the training trace differs from the baseline from step ${first ? first.step : '?'} on`
      if (policy.require_bitwise_baseline) fail('trace', t, detail, 3)
      else checks.push({name: 'trace', target: t, status: 'warn', detail})
    }

    const a = meanAccuracy(base)
    const b = meanAccuracy(cur)
    if (a === null || b === null) checks.push({name: 'accuracy', target: t, status: 'warn', detail: 'no accuracy to compare'})
    else if (Math.abs(b - a) <= policy.accuracy_tolerance)
      checks.push({
        name: 'accuracy',
        target: t,
        status: 'pass',
        detail: `${(100 * b).toFixed(2)} % vs ${(100 * a).toFixed(2)} % (${pp(b - a)}, tolerance ±${(100 * policy.accuracy_tolerance).toFixed(2)} pp)`,
      })
    else
      fail(
        'accuracy',
        t,
        `validation accuracy ${(100 * b).toFixed(2)} % vs baseline ${(100 * a).toFixed(2)} % (${pp(b - a)}) is beyond ±${(100 * policy.accuracy_tolerance).toFixed(2)} pp`,
        1,
      )
  })
  return {
    status: checks.some((c) => c.status === 'fail') ? 'fail' : 'pass',
    checks,
    causes: causes.sort((x, y) => x.rank - y.rank).map((c) => c.text),
  }
}
