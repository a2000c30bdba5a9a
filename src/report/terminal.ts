// Terminal rendering of an audit report: verdict first, then targets, comparisons, the
// fingerprint differences and any errors, as tables drawn with `table`.

import {table} from 'table'
import {describeFirst, type AuditReport, type PairRecord} from '../core/report.js'
import {formatNumber, formatSigned, safeText} from './text.js'

const TABLE = {singleLine: false, drawHorizontalLine: (i: number, rows: number) => i === 0 || i === 1 || i === rows}

export function renderTerminal(report: AuditReport, opts: {maxFingerprintRows?: number} = {}): string {
  const out: string[] = []
  const mark = report.verdict.status === 'reproducible' ? '✔' : report.verdict.status === 'drift' ? '✘' : '!'
  out.push(`${mark} ${safeText(report.verdict.headline, 400)}`, '')

  out.push('Targets')
  const targetRows = [['#', 'target', 'status', 'val accuracy', 'val loss', 'seconds']]
  for (const t of report.targets) {
    const accs = t.runs.map((r) => formatNumber(r.final.val_accuracy)).join(' / ') || '—'
    const losses = t.runs.map((r) => formatNumber(r.final.val_loss)).join(' / ') || '—'
    const secs = t.runs.map((r) => r.seconds.toFixed(1)).join(' / ') || '—'
    targetRows.push([
      String(t.index),
      safeText(t.name, 60) + (t.role === 'variant' ? ' (variant)' : ''),
      t.status === 'ok' ? `ok × ${t.runs.length}` : 'error',
      accs,
      losses,
      secs,
    ])
  }
  out.push(table(targetRows, TABLE))

  if (report.comparisons.length > 0) {
    out.push('Comparisons')
    const rows = [['kind', 'a', 'b', 'result', 'first divergence', 'Δ accuracy']]
    for (const c of report.comparisons)
      rows.push([
        c.role,
        safeText(c.a.name, 60),
        safeText(c.b.name, 60),
        result(c),
        c.divergence.bitwise_identical ? '—' : safeText(describeFirst(c), 60),
        formatSigned(c.outcome.accuracy_delta),
      ])
    out.push(table(rows, TABLE))
  }

  for (const c of report.comparisons.filter((p) => p.role !== 'repeat' && p.fingerprint_changed > 0)) {
    const max = opts.maxFingerprintRows ?? 25
    out.push(`Fingerprint differences: ${safeText(c.a.name, 60)} → ${safeText(c.b.name, 60)} (${c.fingerprint_changed} changed)`)
    const rows = [['group', 'field', 'a', 'b']]
    for (const r of c.fingerprint_changes.slice(0, max)) rows.push([r.group, safeText(r.path, 48), safeText(r.a, 40), safeText(r.b, 40)])
    out.push(table(rows, TABLE))
    if (c.fingerprint_changed > max) out.push(`… ${c.fingerprint_changed - max} more in the JSON report\n`)
  }

  for (const c of report.comparisons.filter((p) => p.divergence.worst.length > 0).slice(0, 2)) {
    out.push(`Largest differences at stored steps: ${safeText(c.a.name, 60)} → ${safeText(c.b.name, 60)}`)
    const rows = [['step', 'entry', 'phase', 'max abs', 'rel L2']]
    for (const w of c.divergence.worst.slice(0, 8))
      rows.push([String(w.step), safeText(w.name, 48), w.phase, formatNumber(w.max_abs), formatNumber(w.rel_l2)])
    out.push(table(rows, TABLE))
  }

  if (report.attribution) out.push(renderAttribution(report))

  const failed = report.targets.filter((t) => t.error)
  if (failed.length > 0) {
    out.push('Errors')
    for (const t of failed) out.push(`  ${safeText(t.error!.line, 400)}`)
    out.push('')
  }
  out.push(`Artifacts: ${safeText(report.settings.out_dir, 300)}`)
  return `${out.join('\n')}\n`
}

function renderAttribution(report: AuditReport): string {
  const at = report.attribution!
  const out: string[] = []
  if (at.noise_floor.length > 0) {
    out.push('Noise floor (repeats inside each target)')
    const rows = [['target', 'repeats', 'result']]
    for (const f of at.noise_floor)
      rows.push([
        safeText(f.name, 60),
        String(f.repeats),
        f.bitwise ? 'bitwise reproducible' : `${f.differing_entries} entries vary between repeats`,
      ])
    out.push(table(rows, TABLE))
  }
  if (at.seeds) {
    out.push(`Seed variance (seeds ${at.seeds.seeds.join(', ')})`)
    const rows = [['target', 'accuracy mean ± sd', 'val loss mean ± sd']]
    const ms = (m: {mean: number | null; sd: number | null}) => `${formatNumber(m.mean)} ± ${formatNumber(m.sd)}`
    for (const t of at.seeds.per_target) rows.push([safeText(t.name, 60), ms(t.accuracy), ms(t.loss)])
    out.push(table(rows, TABLE))
    for (const d of at.seeds.differences) out.push(`  #${d.b} vs #${d.a}: ${safeText(d.sentence, 300)}`)
    out.push('')
  }
  if (at.experiments.length > 0) {
    out.push('Counterfactual reruns')
    const rows = [['id', 'rerun', 'aligned knobs', 'outcome', 'first divergence after']]
    for (const e of at.experiments) {
      const knobs = e.knobs.map((k) => `${k.name}: ${safeText(k.from, 20)} → ${safeText(k.to, 20)}`).join(', ')
      const after = e.first_divergence_after
        ? `step ${e.first_divergence_after.step}, ${safeText(e.first_divergence_after.entry, 40)}`
        : '—'
      rows.push([e.id, `#${e.target} (as #${e.against})`, knobs, e.outcome, after])
    }
    out.push(table(rows, TABLE))
  }
  const loc = (w: NonNullable<typeof at.where>) =>
    `${w.phase} phase, ${safeText(w.entry, 60)}${w.module_type ? ` (${safeText(w.module_type, 40)})` : ''}, step ${w.step}`
  if (at.where) out.push(`Where it starts: ${loc(at.where)}`)
  if (at.residual) out.push(`With the differing knobs aligned it starts later: ${loc(at.residual)}`)
  if (at.where || at.residual) out.push('')
  if (at.suspects.length > 0) {
    out.push('Suspects')
    const rows = [['#', 'suspect', 'change', 'confidence', 'evidence']]
    for (const s of at.suspects.slice(0, 8)) {
      const change = s.a !== null || s.b !== null ? `${safeText(s.a, 30)} → ${safeText(s.b, 30)}` : '—'
      rows.push([String(s.rank), safeText(s.name, 40), change, s.confidence, safeText(s.evidence, 400)])
    }
    out.push(table(rows, {...TABLE, columns: {4: {width: 60, wrapWord: true}}}))
    // Plain-words explanations of the top suspects, each once, with its public source.
    const seen = new Set<string>()
    for (const s of at.suspects.slice(0, 3)) {
      if (!s.explanation || seen.has(s.explanation)) continue
      seen.add(s.explanation)
      out.push(`Why ${safeText(s.name, 40)}: ${safeText(s.explanation, 600)}${s.source ? `\n  (${safeText(s.source, 200)})` : ''}`)
    }
    out.push('')
  }
  return out.join('\n')
}

function result(c: PairRecord): string {
  if (c.divergence.bitwise_identical) return 'bitwise identical'
  const n = c.divergence.counts
  return `${n.differing}/${n.entries} entries differ`
}
