// GitHub Actions: the Markdown report goes to the job's step summary and every failed check
// becomes an `::error` (or `::warning` for informational ones) workflow command. Formatting
// is pure; publishToGitHub is the only function that touches files or streams.

import {promises as fs} from 'node:fs'
import type {AuditReport} from '../core/report.js'
import {escapeWorkflowData, escapeWorkflowProperty} from './escape.js'
import {reportChecks} from './junit.js'
import {renderMarkdown} from './markdown.js'

/** GitHub rejects step summaries over 1 MiB; stay under it with room for other steps. */
export const MAX_STEP_SUMMARY_BYTES = 900 * 1024
/** GitHub shows at most 10 error and 10 warning annotations per step; more are noise. */
export const MAX_ANNOTATIONS = 10

export function isGitHubActions(env: NodeJS.ProcessEnv): boolean {
  return env['GITHUB_ACTIONS'] === 'true'
}

/** The workflow-command lines for the report's failed checks, errors first. */
export function githubAnnotations(report: AuditReport): string[] {
  const checks = reportChecks(report).flatMap((s) => s.checks)
  const errors: string[] = []
  const warnings: string[] = []
  for (const c of checks) {
    if (c.status === 'failed') errors.push(`::error title=${escapeWorkflowProperty(`repro: ${c.name}`)}::${escapeWorkflowData(c.message)}`)
    // skipped checks of a knob variant carry a real difference worth seeing, as a warning
    else if (c.status === 'skipped' && c.classname === 'repro.variant')
      warnings.push(`::warning title=${escapeWorkflowProperty(`repro: ${c.name}`)}::${escapeWorkflowData(c.message)}`)
  }
  const cap = (lines: string[], kind: string): string[] =>
    lines.length > MAX_ANNOTATIONS
      ? [
          ...lines.slice(0, MAX_ANNOTATIONS - 1),
          `::${kind} title=repro::${lines.length - MAX_ANNOTATIONS + 1} more ${kind}s in the step summary and report.json`,
        ]
      : lines
  const out = [...cap(errors, 'error'), ...cap(warnings, 'warning')]
  if (out.length === 0 && report.verdict.status !== 'reproducible')
    out.push(`::error title=repro::${escapeWorkflowData(report.verdict.headline)}`)
  return out
}

/** The Markdown for $GITHUB_STEP_SUMMARY, cut (at a line) to GitHub's size limit. */
export function stepSummary(report: AuditReport): string {
  const text = renderMarkdown(report)
  if (Buffer.byteLength(text) <= MAX_STEP_SUMMARY_BYTES) return text
  const note = '\n\n*… cut to fit the step summary; the full report is in report.md / report.json.*\n'
  let cut = text.slice(0, MAX_STEP_SUMMARY_BYTES - note.length)
  while (Buffer.byteLength(cut) > MAX_STEP_SUMMARY_BYTES - note.length) cut = cut.slice(0, -1024)
  // an open <details> or code fence would swallow the note: close at the last section break
  const at = Math.max(cut.lastIndexOf('\n\n### '), cut.lastIndexOf('\n\n<details>'))
  return (at > 0 ? cut.slice(0, at) : cut.slice(0, cut.lastIndexOf('\n'))) + note
}

export interface GitHubIo {
  appendFile: (file: string, text: string) => Promise<void>
  writeLine: (line: string) => void
}

/**
 * Inside GitHub Actions (`GITHUB_ACTIONS=true`): append the summary to $GITHUB_STEP_SUMMARY
 * (when set) and print the annotations. Returns whether anything was published.
 */
export async function publishToGitHub(
  report: AuditReport,
  env: NodeJS.ProcessEnv,
  io: GitHubIo = {appendFile: (f, t) => fs.appendFile(f, t), writeLine: (l) => process.stdout.write(`${l}\n`)},
): Promise<boolean> {
  if (!isGitHubActions(env)) return false
  const summaryFile = env['GITHUB_STEP_SUMMARY']
  if (summaryFile) await io.appendFile(summaryFile, `${stepSummary(report)}\n`)
  for (const line of githubAnnotations(report)) io.writeLine(line)
  return true
}
