// The HTML report: one self-contained file (inline CSS, inline static SVG charts, no scripts,
// no external URLs, a CSP that forbids loading anything). Every untrusted string goes through
// escapeHtml; attributes are always double-quoted. Deterministic: same report, same bytes.

import {describeFirst, type AuditReport, type PairRecord, type TargetRecord, type WorkloadResult} from '../core/report.js'
import {workloadView} from '../core/workload-results.js'
import type {FingerprintRow} from '../core/fingerprint-diff.js'
import {resumeLine} from '../core/resume.js'
import {renderCharts, type RenderedChart} from './charts.js'
import {escapeHtml as h, safeHttpsUrl} from './escape.js'
import {identityLine, verdictTitle, VERDICT_MARK} from './markdown.js'
import {formatNumber, formatSigned, knobValue} from './text.js'

export const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

const MAX_FINGERPRINT_ROWS = 400

const CSS = `
:root{--fg:#1d2330;--muted:#5b6474;--line:#d9dee7;--bg:#fff;--soft:#f5f7fa;--ok:#1a7f37;--bad:#c62828;--warn:#9a6700;--mono:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
main,header .inner,nav{max-width:1180px;margin:0 auto;padding:0 20px}
header{border-bottom:1px solid var(--line)}
header .inner{display:flex;gap:16px;align-items:flex-start;padding-top:18px;padding-bottom:14px}
.mark{font-size:34px;line-height:1;width:48px;height:48px;border-radius:50%;display:flex;align-items:center;justify-content:center;color:#fff;flex:none}
.verdict-reproducible .mark{background:var(--ok)}.verdict-drift .mark{background:var(--bad)}.verdict-error .mark{background:var(--warn)}
.verdict-reproducible{border-top:6px solid var(--ok)}.verdict-drift{border-top:6px solid var(--bad)}.verdict-error{border-top:6px solid var(--warn)}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}h3{font-size:15px;margin:18px 0 8px}
.headline{margin:0;font-size:15px;overflow-wrap:anywhere}.meta{margin:6px 0 0;color:var(--muted);font-size:13px}
nav{display:flex;flex-wrap:wrap;gap:4px 16px;padding-top:8px;padding-bottom:8px;font-size:13px}nav a{color:var(--muted)}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 10px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:var(--soft);font-weight:600;white-space:nowrap}
td.nowrap{white-space:nowrap;overflow-wrap:normal}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;overflow-wrap:normal}
code,pre,.mono{font-family:var(--mono);font-size:12.5px}
pre{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:10px 12px;white-space:pre-wrap;overflow-wrap:anywhere;margin:6px 0}
.pill{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;font-weight:600;white-space:nowrap}
.pill.ok{background:#dafbe1;color:var(--ok)}.pill.bad{background:#ffebe9;color:var(--bad)}.pill.warn{background:#fff8c5;color:var(--warn)}.pill.info{background:#eef1f6;color:var(--muted)}
del{background:#ffebe9;color:#82071e;text-decoration:line-through}ins{background:#dafbe1;color:#116329;text-decoration:none}
.absent{color:var(--muted);font-style:italic}
figure{margin:12px 0 22px;padding:10px;border:1px solid var(--line);border-radius:8px;break-inside:avoid}
figure svg{display:block;max-width:100%;height:auto}
figcaption{color:var(--muted);font-size:12.5px;margin-top:6px}figcaption b{color:var(--fg)}
details{margin:8px 0}summary{cursor:pointer;color:var(--muted);font-weight:600}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0 10px;font-size:13px}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}
.note{color:var(--muted)}
footer{max-width:1180px;margin:30px auto 20px;padding:10px 20px 0;border-top:1px solid var(--line);color:var(--muted);font-size:12px}
@media print{
  body{font-size:11px}nav{display:none}main,header .inner,footer{max-width:none;padding:0}
  h2{break-after:avoid}table,tr,figure,pre{break-inside:avoid}
  .scroll{overflow:visible}th{background:#eee!important;-webkit-print-color-adjust:exact;print-color-adjust:exact}
  .mark,.pill,del,ins{-webkit-print-color-adjust:exact;print-color-adjust:exact}
  details>summary{list-style:none}details:not([open])>summary::after{content:" (folded; open it in a browser)";font-weight:400}
}
`.trim()

function td(text: string, cls?: string): string {
  return cls ? `<td class="${cls}">${text}</td>` : `<td>${text}</td>`
}

function tableHtml(header: (string | [string, string])[], rows: string[][]): string {
  const th = header.map((x) => (Array.isArray(x) ? `<th class="${x[1]}">${x[0]}</th>` : `<th>${x}</th>`)).join('')
  return `<div class="scroll"><table><thead><tr>${th}</tr></thead><tbody>\n${rows.map((r) => `<tr>${r.join('')}</tr>`).join('\n')}\n</tbody></table></div>`
}

function pill(text: string, kind: 'ok' | 'bad' | 'warn' | 'info'): string {
  return `<span class="pill ${kind}">${h(text, 80)}</span>`
}

function gitLine(git: unknown): string | null {
  if (!git || typeof git !== 'object') return null
  const g = git as Record<string, unknown>
  if (typeof g['commit'] !== 'string') return null
  const parts = [`git ${g['commit'].slice(0, 12)}`]
  if (typeof g['branch'] === 'string') parts.push(g['branch'])
  if (g['dirty'] === true) parts.push('dirty')
  return parts.join(' · ')
}

function header(report: AuditReport): string {
  const v = report.verdict
  const title = verdictTitle(report)
  const i = title.indexOf(' — ')
  const [big, small] = i > 0 ? [title.slice(0, i), title.slice(i + 3)] : [title, '']
  const counted = report.targets.filter((t) => t.role === 'target').length
  const meta = [
    `exit ${v.exit_code}`,
    `${counted} target(s)`,
    `${report.comparisons.length} comparison(s)`,
    `repro ${report.tool.version}`,
    report.created,
    gitLine(report.git),
  ].filter((x): x is string => x !== null)
  return `<header class="verdict-${v.status}"><div class="inner"><div class="mark" aria-hidden="true">${VERDICT_MARK[v.status]}</div><div>
<h1>${h(big.charAt(0).toUpperCase() + big.slice(1), 300)}</h1>
${small ? `<p class="headline">${h(small, 2000)}</p>\n` : ''}<p class="meta">${meta.map((m) => h(m, 200)).join(' · ')}</p>
</div></div></header>`
}

function statusPill(t: TargetRecord): string {
  if (t.status === 'error') return pill('error', 'bad')
  return pill(`ok × ${t.runs.length}`, 'ok') + (t.role === 'variant' ? ` ${pill('variant', 'info')}` : '')
}

function targetsSection(report: AuditReport): string {
  const rows = report.targets.map((t) => [
    td(String(t.index), 'num'),
    td(h(t.name, 300)),
    td(h(t.kind, 40), 'nowrap'),
    td(`<span class="mono">${h(identityLine(t) ?? '—', 400)}</span>`),
    td(statusPill(t)),
    td(outcomes(report, t), 'num'),
    td(t.runs.map((r) => formatNumber(r.final.val_loss)).join(' / ') || '—', 'num'),
    td(t.runs.map((r) => (Number.isFinite(r.seconds) ? r.seconds.toFixed(1) : '—')).join(' / ') || '—', 'num'),
  ])
  const idDetails = report.targets
    .filter((t) => t.identity && Object.keys(t.identity.details).length > 0)
    .map(
      (t) =>
        `<h3>${h(t.name, 300)}</h3><dl>${Object.entries(t.identity!.details)
          .slice(0, 100)
          .map(([k, v]) => `<dt>${h(k, 100)}</dt><dd class="mono">${h(v ?? 'null', 2000)}</dd>`)
          .join('')}</dl>`,
    )
  const s = report.settings
  const settings: [string, string][] = [
    ['seed', String(s.seed)],
    ['epochs', String(s.epochs)],
    ['repeats', String(s.repeats)],
    ['data', s.data_source],
    ['data sha256', s.data_sha256 || '—'],
    ['artifacts', s.out_dir],
  ]
  return `<section id="targets"><h2>Targets</h2>
${tableHtml([['#', 'num'], 'target', 'kind', 'identity (image ID / digest, or interpreter)', 'status', ['val accuracy per repeat', 'num'], ['val loss', 'num'], ['seconds', 'num']], rows)}
${idDetails.length > 0 ? `<details><summary>Identity details</summary>\n${idDetails.join('\n')}\n</details>\n` : ''}<h3>Rerun</h3>
<pre><code>${h(report.command, 8000)}</code></pre>
<dl>${settings.map(([k, v]) => `<dt>${k}</dt><dd class="mono">${h(v, 2000)}</dd>`).join('')}</dl>
</section>`
}

/** Validation accuracy per repeat; with several workloads, each workload's outcome by name (RMSE for the lstm). */
function outcomes(report: AuditReport, t: TargetRecord): string {
  if (!report.by_workload) return t.runs.map((r) => formatNumber(r.final.val_accuracy)).join(' / ') || '—'
  return report.by_workload
    .map((w) => {
      const runs = t.runs.filter((r) => (r.workload ?? 'mlp') === w.workload)
      const v = runs
        .map((r) => formatNumber(w.outcome_metric === 'val_rmse' ? (r.final.val_rmse ?? null) : r.final.val_accuracy))
        .join(' / ')
      return `${h(w.workload, 40)}${w.outcome_metric === 'val_rmse' ? ' (RMSE)' : ''}: ${v || '—'}`
    })
    .join('<br>')
}

function resultPill(c: PairRecord): string {
  if (c.divergence.bitwise_identical) return pill('bitwise identical', 'ok')
  const n = c.divergence.counts
  return pill(`${n.differing}/${n.entries} entries differ`, c.role === 'variant' ? 'warn' : 'bad')
}

function comparisonsSection(report: AuditReport): string {
  if (report.comparisons.length === 0)
    return `<section id="comparisons"><h2>Comparisons</h2><p class="note">No comparison: fewer than two runs could be read.</p></section>`
  const rows = report.comparisons.map((c) => [
    td(h(c.role, 20), 'nowrap'),
    td(h(c.a.name, 300)),
    td(h(c.b.name, 300)),
    td(resultPill(c)),
    td(c.divergence.bitwise_identical ? '—' : h(describeFirst(c), 400)),
    td(formatSigned(c.outcome.accuracy_delta), 'num'),
    td(formatSigned(c.outcome.val_loss_delta), 'num'),
    td(String(c.fingerprint_changed), 'num'),
  ])
  return `<section id="comparisons"><h2>Comparisons</h2>
${tableHtml(['kind', 'a', 'b', 'result', 'first divergence (step, entry, phase)', ['Δ accuracy', 'num'], ['Δ val loss', 'num'], ['fingerprint changes', 'num']], rows)}
</section>`
}

function fingerprintValue(row: FingerprintRow, side: 'a' | 'b'): string {
  const v = row[side]
  if (v === undefined) return '<span class="absent">absent</span>'
  if (row.text && row.text.length > 0) {
    // word diff: side a shows what was removed, side b what was added
    const skip = side === 'a' ? 'added' : 'removed'
    const mark = side === 'a' ? 'del' : 'ins'
    return row.text
      .filter((t) => !t[skip])
      .map((t) => (t.added || t.removed ? `<${mark}>${h(t.value, 4096)}</${mark}>` : h(t.value, 4096)))
      .join('')
  }
  return h(v === null ? 'null' : String(v), 4096)
}

function fingerprintSection(report: AuditReport): string {
  const cs = report.comparisons.filter((c) => c.role !== 'repeat')
  if (cs.length === 0) return ''
  const parts = cs.map((c) => {
    const title = `<h3>${h(c.a.name, 200)} → ${h(c.b.name, 200)}</h3>`
    if (c.fingerprint_changed === 0) return `${title}<p class="note">Fingerprints are identical.</p>`
    const rows = [...c.fingerprint_changes].sort((x, y) => Number(y.changed) - Number(x.changed))
    const shown = rows
      .slice(0, MAX_FINGERPRINT_ROWS)
      .map((r) => [
        td(h(r.group, 40)),
        td(`<span class="mono">${h(r.path, 400)}</span>`),
        td(`<span class="mono">${fingerprintValue(r, 'a')}</span>`),
        td(`<span class="mono">${fingerprintValue(r, 'b')}</span>`),
        td(h(r.change, 20)),
      ])
    const more =
      c.fingerprint_changed > shown.length ? `<p class="note">… ${c.fingerprint_changed - shown.length} more in report.json</p>` : ''
    return `${title}<p class="note">${c.fingerprint_changed} changed field(s), changed rows first.</p>\n${tableHtml(['group', 'field', 'a', 'b', 'change'], shown)}${more}`
  })
  return `<section id="fingerprint"><h2>Fingerprint differences</h2>\n${parts.join('\n')}\n</section>`
}

function chartsSection(report: AuditReport, charts: RenderedChart[]): string {
  const worst = report.comparisons
    .filter((c) => c.divergence.worst.length > 0)
    .map((c) => {
      const rows = c.divergence.worst.map((w) => [
        td(h(w.step, 20), 'num'),
        td(`<span class="mono">${h(w.name, 300)}</span>`),
        td(h(w.phase, 20)),
        td(formatNumber(w.max_abs), 'num'),
        td(formatNumber(w.rel_l2), 'num'),
      ])
      return `<details><summary>Largest differences at stored steps: ${h(c.a.name, 200)} → ${h(c.b.name, 200)}</summary>\n${tableHtml([['step', 'num'], 'entry', 'phase', ['max abs', 'num'], ['rel L2', 'num']], rows)}\n</details>`
    })
  if (charts.length === 0 && worst.length === 0) return ''
  const figures = charts.map(
    (c) => `<figure id="${c.id}">\n${c.svg}\n<figcaption><b>${h(c.title, 300)}.</b> ${h(c.caption, 2000)}</figcaption>\n</figure>`,
  )
  return `<section id="charts"><h2>Charts</h2>\n${figures.join('\n')}\n${worst.join('\n')}\n</section>`
}

function suspectsSection(report: AuditReport): string {
  const at = report.attribution
  if (!at) return ''
  const parts: string[] = []
  if (at.where)
    parts.push(
      `<p>Divergence starts in the <b>${h(at.where.phase, 40)}</b> pass${at.where.module_type ? ` of a <b>${h(at.where.module_type, 80)}</b>` : ''} (<span class="mono">${h(at.where.entry, 300)}</span>, step ${h(at.where.step, 20)}).</p>`,
    )
  if (at.residual)
    parts.push(
      `<p>With every differing knob aligned, it still starts in the <b>${h(at.residual.phase, 40)}</b> pass${at.residual.module_type ? ` of a <b>${h(at.residual.module_type, 80)}</b>` : ''} (<span class="mono">${h(at.residual.entry, 300)}</span>, step ${h(at.residual.step, 20)}).</p>`,
    )
  if (at.suspects.length === 0) parts.push('<p class="note">No suspect found.</p>')
  else {
    const conf = {high: 'bad', medium: 'warn', low: 'info'} as const
    const rows = [...at.suspects]
      .sort((x, y) => x.rank - y.rank)
      .map((s) => {
        const url = safeHttpsUrl(s.source)
        const source = url
          ? ` <a href="${h(url, 2048)}" rel="noreferrer noopener">source</a>`
          : s.source
            ? ` <span class="note">(source: ${h(s.source, 300)})</span>`
            : ''
        return [
          td(String(s.rank), 'num'),
          td(h(s.kind, 40), 'nowrap'),
          td(`<b>${h(s.name, 300)}</b>`),
          td(`<span class="mono">${h(s.a ?? '—', 400)}</span>`),
          td(`<span class="mono">${h(s.b ?? '—', 400)}</span>`),
          td(pill(s.confidence, conf[s.confidence] ?? 'info')),
          td(`${h(s.evidence, 1000)}${s.explanation ? `<br><span class="note">${h(s.explanation, 2000)}</span>` : ''}${source}`),
        ]
      })
    parts.push(tableHtml([['#', 'num'], 'kind', 'suspect', 'a', 'b', 'confidence', 'evidence'], rows))
  }
  const replays = at.experiments.filter((e) => e.kind === 'replay')
  if (replays.length > 0) {
    const outcome = {localized: 'bad', cleared: 'ok', 'inputs-differ': 'warn', 'not-faithful': 'info', failed: 'info'} as const
    const rows = replays.map((e) => [
      td(`<span class="mono">${h(e.id, 80)}</span>`),
      td(h(e.op ?? 'op', 200)),
      td(`#${e.against} and #${e.target}`),
      td(pill(e.outcome, (outcome as Record<string, 'ok' | 'warn' | 'bad' | 'info'>)[e.outcome] ?? 'info')),
      td(h(e.note, 1000)),
    ])
    parts.push(`<h3>Op replays</h3>\n${tableHtml(['experiment', 'op', 'targets', 'outcome', 'note'], rows)}`)
  }
  const knobRuns = at.experiments.filter((e) => e.kind !== 'replay')
  if (knobRuns.length > 0) {
    const fd = (x: {step: string | number; entry: string} | null) =>
      x ? `step ${h(x.step, 20)}, <span class="mono">${h(x.entry, 300)}</span>` : '—'
    const outcome: Record<string, 'ok' | 'warn' | 'bad' | 'info'> = {disappears: 'ok', 'moves-later': 'warn', stays: 'bad', failed: 'info'}
    const rows = knobRuns.map((e) => [
      td(`<span class="mono">${h(e.id, 80)}</span>`),
      td(
        e.knobs
          .map((k) => `<span class="mono">${h(k.name, 80)}: ${h(knobValue(k.from), 200)} → ${h(knobValue(k.to), 200)}</span>`)
          .join('<br>'),
      ),
      td(`#${e.target} vs #${e.against}`),
      td(pill(e.outcome, outcome[e.outcome] ?? 'info')),
      td(fd(e.first_divergence_before)),
      td(fd(e.first_divergence_after)),
      td(h(e.note, 1000)),
    ])
    parts.push(
      `<h3>Counterfactual reruns</h3>\n${tableHtml(['experiment', 'knobs', 'targets', 'divergence', 'before', 'after', 'note'], rows)}`,
    )
  }
  if (at.noise_floor.length > 0) {
    const rows = at.noise_floor.map((n) => [
      td(h(n.name, 300)),
      td(String(n.repeats), 'num'),
      td(n.bitwise ? pill('bitwise identical', 'ok') : pill(`${n.differing_entries} entries differ`, 'bad')),
      td(
        n.spread
          .slice(0, 5)
          .map((s) => `<span class="mono">${h(s.name, 200)}</span> ${formatNumber(s.max_abs)}`)
          .join('<br>') || '—',
      ),
    ])
    parts.push(`<h3>Noise floor</h3>\n${tableHtml(['target', ['repeats', 'num'], 'repeats are', 'largest spread between repeats'], rows)}`)
  }
  if (at.seeds) {
    const rows = at.seeds.per_target.map((p) => [
      td(h(p.name, 300)),
      td(String(p.accuracy.n), 'num'),
      td(`${formatNumber(p.accuracy.mean)} ± ${formatNumber(p.accuracy.sd)}`, 'num'),
      td(`${formatNumber(p.loss.mean)} ± ${formatNumber(p.loss.sd)}`, 'num'),
    ])
    const diffs = at.seeds.differences.map(
      (d) => `<li>${h(d.sentence, 1000)} ${d.significant ? pill('significant', 'bad') : pill('within seed spread', 'ok')}</li>`,
    )
    parts.push(
      `<h3>Seed variance (${at.seeds.seeds.length} seeds)</h3>\n${tableHtml(['target', ['seeds', 'num'], ['val accuracy mean ± sd', 'num'], ['val loss mean ± sd', 'num']], rows)}${diffs.length ? `<ul>${diffs.join('')}</ul>` : ''}`,
    )
  }
  return `<section id="suspects"><h2>Suspects</h2>\n${parts.join('\n')}\n</section>`
}

function errorsSection(report: AuditReport): string {
  const failed = report.targets.filter((t) => t.error)
  if (failed.length === 0) return ''
  const items = failed.map(
    (t) =>
      `<h3>${h(t.name, 300)}</h3><pre><code>${h(t.error!.message, 8000, {keepNewlines: true})}</code></pre><p><b>Fix:</b> ${h(t.error!.hint, 2000)}</p>`,
  )
  return `<section id="errors"><h2>Errors</h2>\n${items.join('\n')}\n</section>`
}

function nav(report: AuditReport, charts: RenderedChart[]): string {
  const links: [string, string][] = [
    ['targets', 'Targets'],
    ['comparisons', 'Comparisons'],
  ]
  if (report.by_workload) {
    links.length = 1
    if (report.comparisons.some((c) => c.role !== 'repeat')) links.push(['fingerprint', 'Fingerprint'])
    for (const w of report.by_workload) links.push([`workload-${w.workload}`, w.workload])
  } else {
    if (report.comparisons.some((c) => c.role !== 'repeat')) links.push(['fingerprint', 'Fingerprint'])
    if (charts.length > 0 || report.comparisons.some((c) => c.divergence.worst.length > 0)) links.push(['charts', 'Charts'])
    if (report.attribution) links.push(['suspects', 'Suspects'])
  }
  if (report.targets.some((t) => t.error)) links.push(['errors', 'Errors'])
  return `<nav>${links.map(([id, text]) => `<a href="#${id}">${text}</a>`).join('')}</nav>`
}

/**
 * One workload of several: its comparisons, charts and suspects under its own heading; the
 * sections' ids are prefixed with the workload, so the page keeps unique anchors.
 */
function workloadSection(report: AuditReport, w: WorkloadResult, charts: RenderedChart[]): string {
  const view = workloadView(report, w)
  const scoped = (html: string) =>
    html
      .replace(/<section id="([a-z-]+)">/g, `<section id="${w.workload}-$1">`)
      .replace(/<h2>/g, '<h3>')
      .replace(/<\/h2>/g, '</h3>')
  const kind = w.verdict.status === 'reproducible' ? 'ok' : w.verdict.status === 'drift' ? 'bad' : 'warn'
  return [
    `<section id="workload-${h(w.workload, 40)}"><h2>${h(w.workload, 40)} ${pill(w.verdict.status, kind)}</h2>`,
    `<p>${h(w.verdict.headline, 2000)}</p>`,
    scoped(comparisonsSection(view)),
    scoped(chartsSection(view, charts)),
    scoped(suspectsSection(view)),
    '</section>',
  ]
    .filter((x) => x !== '')
    .join('\n')
}

/** The page from already-rendered charts (pure and synchronous); with several workloads, `charts` is keyed by workload. */
export function renderHtmlWithCharts(report: AuditReport, charts: RenderedChart[], byWorkload?: Map<string, RenderedChart[]>): string {
  const title = `${VERDICT_MARK[report.verdict.status]} repro: ${verdictTitle(report)}`
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${CSP}">`,
    '<meta name="referrer" content="no-referrer">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${h(title, 300)}</title>`,
    `<style>\n${CSS}\n</style>`,
    '</head>',
    '<body>',
    header(report),
    nav(report, charts),
    '<main>',
    targetsSection(report),
    ...(report.by_workload
      ? [fingerprintSection(report), ...report.by_workload.map((w) => workloadSection(report, w, byWorkload?.get(w.workload) ?? []))]
      : [comparisonsSection(report), fingerprintSection(report), chartsSection(report, charts), suspectsSection(report)]),
    errorsSection(report),
    report.resume ? `<section><p class="meta">${h(resumeLine(report.resume), 2000)}</p></section>` : '',
    '</main>',
    `<footer>Report written by repro ${h(report.tool.version, 40)} (${h(report.schema, 40)}). This file is self-contained: no scripts, no fonts, no network requests.</footer>`,
    '</body>',
    '</html>',
  ]
    .filter((x) => x !== '')
    .join('\n')
    .concat('\n')
}

/** The self-contained HTML report. Async only because vega renders SVG asynchronously; no I/O. */
export async function renderHtml(report: AuditReport): Promise<string> {
  if (!report.by_workload) return renderHtmlWithCharts(report, await renderCharts(report))
  const byWorkload = new Map<string, RenderedChart[]>()
  for (const w of report.by_workload)
    byWorkload.set(w.workload, await renderCharts(workloadView(report, w), {name: w.workload, metric: w.outcome_metric}))
  return renderHtmlWithCharts(report, [], byWorkload)
}
