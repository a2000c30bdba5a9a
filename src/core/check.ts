// The result of `repro check`: a configured audit held against a baseline report and a policy.
// Pure data, built by checkResult; the app gathers the parts (git, baseline, audit).

import type {PolicyOutcome} from './policy.js'
import type {AuditReport} from './report.js'

export const CHECK_SCHEMA = 'repro.check/1'

export interface GitStamp {
  repository: boolean
  commit: string | null
  branch: string | null
  dirty: boolean | null
  merge_base: string | null
}

export interface BaselineRef {
  source: 'file' | 'git'
  path: string
  ref: string | null
  commit: string | null
  created: string | null
}

export interface CheckReport {
  schema: typeof CHECK_SCHEMA
  status: 'pass' | 'fail' | 'baseline-updated'
  exit_code: 0 | 1
  git: GitStamp
  baseline: BaselineRef
  policy: PolicyOutcome | null
  audit: AuditReport
}

/** A check that wrote a new baseline (nothing to hold it against). */
export function baselineUpdated(git: GitStamp, path: string, audit: AuditReport): CheckReport {
  const baseline: BaselineRef = {source: 'file', path, ref: null, commit: git.commit, created: audit.created}
  return {schema: CHECK_SCHEMA, status: 'baseline-updated', exit_code: 0, git, baseline, policy: null, audit}
}

/** A check held against a baseline: pass (exit 0) or fail (exit 1) as the policy says. */
export function checkResult(
  git: GitStamp,
  baseline: Omit<BaselineRef, 'commit' | 'created'>,
  base: AuditReport,
  policy: PolicyOutcome,
  audit: AuditReport,
): CheckReport {
  const baseGit = base.git as {commit?: unknown} | null
  return {
    schema: CHECK_SCHEMA,
    status: policy.status,
    exit_code: policy.status === 'pass' ? 0 : 1,
    git,
    baseline: {...baseline, commit: typeof baseGit?.commit === 'string' ? baseGit.commit : null, created: base.created},
    policy,
    audit,
  }
}
