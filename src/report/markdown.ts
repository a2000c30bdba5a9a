// Markdown for PR comments and the GitHub step summary: the verdict on the first line, then
// targets, the rerun command, comparisons, suspects; long sections folded into <details>.
// Every untrusted string goes through escapeMarkdown (inline) or markdownFence (code).

import {replicaNotes, scriptWorldSizesNote} from '../core/distributed.js'
import {describeFirst, explainSecondsLine, type AuditReport, type PairRecord, type TargetRecord} from '../core/report.js'
import {workloadView} from '../core/workload-results.js'
import type {FingerprintRow} from '../core/fingerprint-diff.js'
import {escapeMarkdown as md, markdownFence, safeHttpsUrl} from './escape.js'
import {resumeLine} from '../core/resume.js'
import {formatNumber, formatSigned, knobValue} from './text.js'

export const VERDICT_MARK = {reproducible: '✔', drift: '✘', error: '⚠'} as const

const MAX_FINGERPRINT_ROWS = 60
const MAX_WORST_ROWS = 10

/** The verdict headline with its kind set off: `drift between targets — a vs b first diverge at …`. */
export function verdictTitle(report: AuditReport): string {
  // only the fixed prefixes decideVerdict writes: a colon inside a target name is not a split point
  return report.verdict.headline.replace(/^(drift between targets|not reproducible within a target|bitwise reproducible): /, '$1 — ')
}

function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

function details(summary: string, body: string): string {
  // blank lines around the body so GitHub renders its Markdown inside the HTML block
  return `<details><summary>${summary}</summary>\n\n${body}\n\n</details>`
}

/** The most telling identity of a target: image ID / digest, or the interpreter's real path. */
export function identityLine(t: TargetRecord): string | null {
  const d = t.identity?.details ?? {}
  const pick = (k: string) => (d[k] === null || d[k] === undefined || d[k] === '' ? null : String(d[k]))
  const image = pick('repo_digests') ?? pick('id')
  if (image) return pick('id') && pick('repo_digests') ? `${pick('id')} (${pick('repo_digests')})` : image
  return pick('real_path') ?? pick('path') ?? t.identity?.reference ?? null
}

function value(v: FingerprintRow['a']): string {
  return v === undefined ? '*(absent)*' : md(v === null ? 'null' : String(v), 300)
}

function targetsSection(report: AuditReport): string {
  const rows = report.targets.map((t) => [
    String(t.index),
    md(t.name, 200) + (t.role === 'variant' ? ' *(variant)*' : ''),
    md(t.kind, 40),
    md(identityLine(t) ?? '—', 300),
    t.status === 'ok' ? `ok × ${t.runs.length}` : '**error**',
    t.runs.map((r) => formatNumber(r.final.val_accuracy)).join(' / ') || '—',
  ])
  return `### Targets\n\n${table(['#', 'target', 'kind', 'identity', 'status', 'val accuracy per repeat'], rows)}`
}

function result(c: PairRecord): string {
  const n = c.divergence.counts
  return c.divergence.bitwise_identical ? 'bitwise identical' : `${n.differing}/${n.entries} entries differ`
}

function comparisonsSection(report: AuditReport): string {
  const rows = report.comparisons.map((c) => [
    c.role,
    md(c.a.name, 200),
    md(c.b.name, 200),
    result(c),
    c.divergence.bitwise_identical ? '—' : md(describeFirst(c), 300),
    formatSigned(c.outcome.accuracy_delta),
    formatSigned(c.outcome.val_loss_delta),
  ])
  return `### First divergence per comparison\n\n${table(['kind', 'a', 'b', 'result', 'first divergence', 'Δ accuracy', 'Δ val loss'], rows)}`
}

function suspectsSection(report: AuditReport): string | null {
  const at = report.attribution
  if (!at) return null
  const parts: string[] = ['### Suspects']
  if (at.where)
    parts.push(
      `Divergence starts in the **${md(at.where.phase, 40)}** pass${at.where.module_type ? ` of a ${md(at.where.module_type, 80)}` : ''} (${md(at.where.entry, 200)}, step ${md(at.where.step, 20)}).`,
    )
  if (at.residual)
    parts.push(
      `With every differing knob aligned, it still starts in the **${md(at.residual.phase, 40)}** pass${at.residual.module_type ? ` of a ${md(at.residual.module_type, 80)}` : ''} (${md(at.residual.entry, 200)}, step ${md(at.residual.step, 20)}).`,
    )
  if (at.suspects.length === 0) parts.push('No suspect found.')
  else {
    const rows = [...at.suspects]
      .sort((x, y) => x.rank - y.rank)
      .map((s) => {
        const url = safeHttpsUrl(s.source)
        const source = url ? ` ([source](${url}))` : s.source ? ` (source: ${md(s.source, 200)})` : ''
        return [
          String(s.rank),
          md(s.kind, 40),
          md(s.name, 200),
          md(s.a ?? '—', 200),
          md(s.b ?? '—', 200),
          md(s.confidence, 10),
          md(s.evidence, 500) + (s.explanation ? ` — ${md(s.explanation, 500)}` : '') + source,
        ]
      })
    parts.push(table(['#', 'kind', 'suspect', 'a', 'b', 'confidence', 'evidence'], rows))
  }
  const replays = at.experiments.filter((e) => e.kind === 'replay')
  if (replays.length > 0)
    parts.push(
      details(
        `Op replays (${replays.length})`,
        table(
          ['experiment', 'op', 'targets', 'outcome', 'note'],
          replays.map((e) => [
            md(e.id, 60),
            md(e.op ?? 'op', 200),
            md(`#${e.against} and #${e.target}`),
            md(e.outcome, 20),
            md(e.note, 500),
          ]),
        ),
      ),
    )
  const knobRuns = at.experiments.filter((e) => e.kind !== 'replay')
  if (knobRuns.length > 0) {
    const rows = knobRuns.map((e) => [
      md(e.id, 60),
      md(e.knobs.map((k) => `${k.name}: ${knobValue(k.from)} → ${knobValue(k.to)}`).join(', '), 300),
      md(`#${e.target} vs #${e.against}`),
      md(e.outcome, 20),
      md(e.first_divergence_before ? `step ${e.first_divergence_before.step}, ${e.first_divergence_before.entry}` : '—', 200),
      md(e.first_divergence_after ? `step ${e.first_divergence_after.step}, ${e.first_divergence_after.entry}` : '—', 200),
      md(e.note, 300),
    ])
    parts.push(
      details(
        `Counterfactual reruns (${knobRuns.length})`,
        table(['experiment', 'knobs', 'targets', 'divergence', 'before', 'after', 'note'], rows),
      ),
    )
  }
  const took = explainSecondsLine(at)
  if (took) parts.push(`${md(took, 300)}.`)
  if (at.noise_floor.length > 0) {
    const rows = at.noise_floor.map((n) => [
      md(n.name, 200),
      String(n.repeats),
      n.bitwise ? 'bitwise identical' : `${n.differing_entries} entries differ`,
      md(
        n.spread
          .slice(0, 3)
          .map((s) => `${s.name} ${formatNumber(s.max_abs)}`)
          .join(', ') || '—',
        300,
      ),
    ])
    parts.push(details('Noise floor (repeats within a target)', table(['target', 'repeats', 'repeats are', 'largest spread'], rows)))
  }
  if (at.seeds) {
    const rows = at.seeds.per_target.map((p) => [
      md(p.name, 200),
      String(p.accuracy.n),
      `${formatNumber(p.accuracy.mean)} ± ${formatNumber(p.accuracy.sd)}`,
      `${formatNumber(p.loss.mean)} ± ${formatNumber(p.loss.sd)}`,
    ])
    const diffs = at.seeds.differences.map((d) => `- ${md(d.sentence, 400)}`).join('\n')
    parts.push(
      details(
        `Seed variance (${at.seeds.seeds.length} seeds)`,
        `${table(['target', 'seeds', 'val accuracy mean ± sd', 'val loss mean ± sd'], rows)}${diffs ? `\n\n${diffs}` : ''}`,
      ),
    )
  }
  return parts.join('\n\n')
}

function fingerprintSections(report: AuditReport): string[] {
  const pairs = report.comparisons.filter((c) => c.role !== 'repeat' && c.fingerprint_changed > 0)
  // several workloads compare the same two environments: their differences once per pair of targets
  return pairs
    .filter((c, i) => pairs.findIndex((q) => q.a.target === c.a.target && q.b.target === c.b.target) === i)
    .map((c) => {
      // changed rows first (a report keeps only changed rows, but older or foreign ones may not)
      const rows = [...c.fingerprint_changes].sort((x, y) => Number(y.changed) - Number(x.changed))
      const shown = rows.slice(0, MAX_FINGERPRINT_ROWS).map((r) => [md(r.group, 40), md(r.path, 200), value(r.a), value(r.b), r.change])
      const more = c.fingerprint_changed > shown.length ? `\n\n… ${c.fingerprint_changed - shown.length} more in report.json` : ''
      return details(
        `Fingerprint differences: ${md(c.a.name, 120)} → ${md(c.b.name, 120)} (${c.fingerprint_changed} changed)`,
        table(['group', 'field', 'a', 'b', 'change'], shown) + more,
      )
    })
}

function worstSections(report: AuditReport): string[] {
  return report.comparisons
    .filter((c) => c.divergence.worst.length > 0)
    .map((c) => {
      const rows = c.divergence.worst
        .slice(0, MAX_WORST_ROWS)
        .map((w) => [md(w.step, 20), md(w.name, 200), md(w.phase, 20), formatNumber(w.max_abs), formatNumber(w.rel_l2)])
      return details(
        `Largest differences at stored steps: ${md(c.a.name, 120)} → ${md(c.b.name, 120)}`,
        table(['step', 'entry', 'phase', 'max abs', 'rel L2'], rows),
      )
    })
}

function outcomeSection(report: AuditReport): string | null {
  const many = Boolean(report.by_workload)
  const rows = report.targets.flatMap((t) =>
    t.runs.map((r) => [
      md(t.name, 200),
      ...(many ? [md(r.workload ?? 'mlp', 40), formatNumber(r.final.val_rmse ?? null)] : []),
      String(r.repeat),
      formatNumber(r.final.val_accuracy),
      formatNumber(r.final.val_loss),
      formatNumber(r.final.train_loss),
      String(r.epochs.length),
      Number.isFinite(r.seconds) ? r.seconds.toFixed(1) : '—',
    ]),
  )
  if (rows.length === 0) return null
  const header = [
    'target',
    ...(many ? ['workload', 'val RMSE'] : []),
    'repeat',
    'val accuracy',
    'val loss',
    'train loss',
    'epochs',
    'seconds',
  ]
  return details('Outcome per run', table(header, rows))
}

function errorsSection(report: AuditReport): string | null {
  const failed = report.targets.filter((t) => t.error)
  if (failed.length === 0) return null
  const lines = failed.flatMap((t) =>
    (t.errors ?? [{workload: null, ...t.error!}]).map(
      (e) => `- **${md(t.name, 200)}**${e.workload ? ` (${md(e.workload, 40)})` : ''}: ${md(e.message, 1000)} — ${md(e.hint, 500)}`,
    ),
  )
  return `### Errors\n\n${lines.join('\n')}`
}

export function renderMarkdown(report: AuditReport): string {
  const v = report.verdict
  const counted = report.targets.filter((t) => t.role === 'target').length
  const parts: (string | null)[] = [
    `## ${VERDICT_MARK[v.status]} repro: ${md(verdictTitle(report), 1000)}`,
    `**exit ${v.exit_code}** (${v.status}) · ${counted} target(s) · ${report.comparisons.length} comparison(s) · repro ${md(report.tool.version, 40)} · ${md(report.created, 40)}`,
    targetsSection(report),
    `Rerun:\n\n${markdownFence(report.command.replace(/\n/g, ' '), 'sh')}`,
    ...(report.by_workload
      ? workloadSections(report)
      : [report.comparisons.length > 0 ? comparisonsSection(report) : null, replicaSection(report), suspectsSection(report)]),
    alertsSection(report),
    ...fingerprintSections(report),
    ...(report.by_workload ? [] : worstSections(report)),
    outcomeSection(report),
    errorsSection(report),
    report.resume ? md(resumeLine(report.resume), 2000) : null,
  ]
  return `${parts.filter((p): p is string => p !== null).join('\n\n')}\n`
}

/** An audit of several workloads: each under its own heading and verdict. */
function workloadSections(report: AuditReport): string[] {
  return report.by_workload!.flatMap((w) => {
    const view = workloadView(report, w)
    const title = `### ${md(w.workload, 40)} — ${VERDICT_MARK[w.verdict.status]} ${md(w.verdict.headline, 600)}`
    const quiet = w.verdict.status === 'reproducible' && w.verdict.headline.startsWith('bitwise') && !w.attribution?.seeds
    if (quiet) return [title]
    const suspects = suspectsSection(view)?.replace(/^### Suspects/, '#### Suspects') ?? null
    const comparisons = comparisonsSection(view).replace(/^### /, '#### ')
    return [title, comparisons, replicaSection(view), suspects, ...worstSections(view)].filter((x): x is string => x !== null)
  })
}

/** Data-parallel targets: the replica check. */
function replicaSection(report: AuditReport): string | null {
  const notes = replicaNotes(report).map((n) => `- ${n.drift ? '❌' : '✅'} ${md(n.text, 2000)}`)
  const sizes = scriptWorldSizesNote(report)
  if (sizes) notes.push(`- ${md(sizes, 300)}`)
  return notes.length ? notes.join('\n') : null
}

/** With deterministic=warn: the nondeterministic ops torch warned about, per workload and target. */
function alertsSection(report: AuditReport): string | null {
  const rows = report.targets.flatMap((t) =>
    t.runs
      .filter((r) => r.repeat === 1)
      .flatMap((r) => (r.alerts ?? []).map((a) => [md(t.name, 200), md(r.workload ?? 'mlp', 40), md(a.message, 500), String(a.count)])),
  )
  if (rows.length === 0) return null
  return details(`Nondeterministic-op alerts (${rows.length})`, table(['target', 'workload', 'alert', 'count'], rows))
}
