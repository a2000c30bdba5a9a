// Markdown for `repro check`: the verdict and its cause in the first line (PR comments and
// the GitHub step summary), then every policy check. Pure; untrusted text escaped.

import type {CheckReport} from '../core/check.js'
import {escapeMarkdown, markdownFence} from './escape.js'

const MARK = {pass: '✅', warn: '⚠️', fail: '❌'} as const

export function renderCheckMarkdown(r: CheckReport): string {
  const out: string[] = []
  if (r.status === 'baseline-updated') {
    out.push(`## ✅ repro check: baseline updated — ${escapeMarkdown(r.baseline.path, 300)}`, '')
  } else {
    const cause = r.policy?.causes[0]
    out.push(
      r.status === 'pass'
        ? '## ✅ repro check: within policy'
        : `## ❌ repro check: beyond policy — ${escapeMarkdown(cause ?? 'see the checks below', 400)}`,
      '',
    )
  }
  const git = r.git
  out.push(
    `- commit \`${escapeMarkdown((git.commit ?? 'none').slice(0, 12), 40)}\` on ${escapeMarkdown(git.branch ?? 'no branch', 100)}${git.dirty ? ' (dirty)' : ''}${git.merge_base ? `, merge-base \`${escapeMarkdown(git.merge_base.slice(0, 12), 40)}\`` : ''}`,
    `- baseline: ${r.baseline.source === 'git' ? `\`${escapeMarkdown(r.baseline.ref, 100)}\`` : 'file'} ${escapeMarkdown(r.baseline.path, 300)}${r.baseline.commit ? ` (made at \`${escapeMarkdown(r.baseline.commit.slice(0, 12), 40)}\`)` : ''}`,
    `- audit: ${escapeMarkdown(r.audit.verdict.headline, 400)}`,
    '',
  )
  if (r.policy) {
    out.push('| | check | target | detail |', '|---|---|---|---|')
    for (const c of r.policy.checks) {
      const target =
        c.target === null ? '—' : escapeMarkdown(r.audit.targets.find((t) => t.index === c.target)?.name ?? `#${c.target}`, 120)
      out.push(`| ${MARK[c.status]} | ${escapeMarkdown(c.name, 40)} | ${target} | ${escapeMarkdown(c.detail, 600)} |`)
    }
    out.push('')
    if (r.policy.causes.length > 1) {
      out.push('<details><summary>All causes</summary>', '')
      for (const c of r.policy.causes) out.push(`- ${escapeMarkdown(c, 600)}`)
      out.push('', '</details>', '')
    }
  }
  out.push('Rerun locally:', '', markdownFence(r.audit.command, 'sh'), '')
  return out.join('\n')
}
