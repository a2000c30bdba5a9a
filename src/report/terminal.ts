// Terminal rendering of an audit report: verdict first, then targets, comparisons, the
// fingerprint differences, attribution and any errors. Everything fits `width` columns: targets
// are listed once by number with their full names, tables give way column by column, prose
// wraps, paths keep their end when cut; the full detail stays in the JSON and HTML reports.

import {replicaNotes, scriptWorldSizesNote} from '../core/distributed.js'
import {type AuditReport, describeFirst, explainSecondsLine, type PairRecord, type RunRecord} from '../core/report.js'
import {resumeLine} from '../core/resume.js'
import {workloadView} from '../core/workload-results.js'
import {DEFAULT_WIDTH, fitTable, shortenMiddle, wrapText} from './layout.js'
import {formatNumber, formatSigned, safeText} from './text.js'

export interface TerminalOptions {
  /** columns available (default 80) */
  width?: number
  maxFingerprintRows?: number
}

export function renderTerminal(report: AuditReport, opts: TerminalOptions = {}): string {
  const width = opts.width ?? DEFAULT_WIDTH
  const out: string[] = [wrapText(`${mark(report.verdict.status)} ${safeText(report.verdict.headline, 600)}`, width, '  '), '']
  out.push(...targetsSection(report, width))
  if (report.by_workload) out.push(...workloadsSections(report, width, opts.maxFingerprintRows ?? 25))
  else out.push(...workloadSections(report, width, opts.maxFingerprintRows ?? 25))
  const failed = report.targets.filter((t) => t.error)
  if (failed.length > 0) {
    out.push('Errors')
    for (const t of failed)
      for (const line of t.errors?.map((e) => e.line) ?? [t.error!.line]) out.push(wrapText(`  ${safeText(line, 600)}`, width, '    '))
    out.push('')
  }
  if (report.resume) out.push(wrapText(safeText(resumeLine(report.resume), 2000), width, '  '), '')
  out.push(`Artifacts: ${shortenMiddle(safeText(report.settings.out_dir, 600), width - 'Artifacts: '.length)}`)
  return `${out.join('\n')}\n`
}

const mark = (status: AuditReport['verdict']['status']) => (status === 'reproducible' ? '✔' : status === 'drift' ? '✘' : '!')

/** Everything one workload's comparisons say (the whole report, when it audited one workload). */
function workloadSections(report: AuditReport, width: number, maxFingerprintRows: number, withFingerprint = true): string[] {
  const out = [
    ...comparisonsSection(report, width),
    ...replicaSection(report, width),
    ...compiledSection(report, width),
    ...scriptSection(report, width),
  ]
  if (withFingerprint) out.push(...fingerprintSection(report, width, maxFingerprintRows))
  out.push(...largestSection(report, width))
  if (report.attribution) out.push(...attributionSection(report, width))
  return out
}

/**
 * An audit of several workloads: the environment's fingerprint differences once, then each
 * workload under its own verdict; a workload bitwise identical everywhere is one line.
 */
function workloadsSections(report: AuditReport, width: number, maxFingerprintRows: number): string[] {
  const out = fingerprintSection(report, width, maxFingerprintRows, true)
  for (const w of report.by_workload!) {
    const view = workloadView(report, w)
    out.push(wrapText(`${mark(w.verdict.status)} ${w.workload}: ${safeText(w.verdict.headline, 600)}`, width, '  '))
    const quiet = w.verdict.status === 'reproducible' && w.verdict.headline.startsWith('bitwise') && !w.attribution?.seeds
    out.push(...(quiet ? [''] : ['', ...workloadSections(view, width, maxFingerprintRows, false)]))
  }
  return out
}

/** Data-parallel targets: the replica check (every rank's parameters against rank 0's). */
function replicaSection(report: AuditReport, width: number): string[] {
  const notes = replicaNotes(report)
  if (notes.length === 0) return []
  return [...notes.map((n) => wrapText(`${n.drift ? '✘' : '✔'} ${safeText(n.text, 2000)}`, width, '  ')), '']
}

/** Targets by number, names in full (wrapped): the tables below refer to them as #N. */
function targetsSection(report: AuditReport, width: number): string[] {
  const out = ['Targets']
  for (const t of report.targets) {
    const role = t.role === 'variant' ? ' (variant)' : ''
    out.push(wrapText(`  ${safeText(t.name, 600)}${role}`, width, '      '))
  }
  const workloads = report.by_workload?.map((w) => ({workload: w.workload, metric: w.outcome_metric})) ?? [
    {workload: null, metric: singleMetric(report)},
  ]
  const many = workloads.length > 1
  const metricName = (m: string) => (m === 'val_rmse' ? 'val RMSE' : m === 'train_loss' ? 'last loss' : 'val accuracy')
  // a user's script has no validation loss of its own: no column of dashes for it
  const valLoss = report.targets.some((t) => t.runs.some((r) => r.final.val_loss !== null))
  const rows = [
    [
      ...(many ? ['#', 'workload'] : ['#']),
      'status',
      many ? 'outcome' : metricName(workloads[0]!.metric),
      ...(valLoss ? ['val loss'] : []),
      'seconds',
    ],
  ]
  for (const t of report.targets) {
    for (const {workload, metric} of workloads) {
      const runs = t.runs.filter((r) => workload === null || (r.workload ?? 'mlp') === workload)
      const each = (f: (r: RunRecord) => string) => runs.map(f).join(' / ') || '—'
      const failed =
        workload === null ? t.status !== 'ok' : Boolean(t.errors?.some((e) => e.workload === workload)) || (t.status !== 'ok' && !t.errors)
      const value = (r: RunRecord) =>
        metric === 'val_rmse' ? (r.final.val_rmse ?? null) : metric === 'train_loss' ? r.final.train_loss : r.final.val_accuracy
      const outcome = each((r) => formatNumber(value(r)))
      rows.push([
        ...(many ? [`#${t.index}`, workload!] : [`#${t.index}`]),
        failed ? 'error' : `ok × ${runs.length}`,
        many ? `${metric === 'val_rmse' ? 'rmse' : 'acc'} ${outcome}` : outcome,
        ...(valLoss ? [each((r) => formatNumber(r.final.val_loss))] : []),
        each((r) => (r.resumed ? 'resumed' : r.cached ? 'cached' : r.seconds.toFixed(1))),
      ])
    }
  }
  out.push(fitTable(rows, width))
  return out
}

/** The outcome a one-workload report is judged by (reports made before workloads: accuracy). */
function singleMetric(report: AuditReport): 'val_accuracy' | 'val_rmse' | 'train_loss' {
  const runs = report.targets.flatMap((t) => t.runs)
  if (runs.some((r) => r.workload === 'lstm')) return 'val_rmse'
  // a user's script: its reported accuracy if it reported one, else its last loss
  if (runs.some((r) => r.workload === 'script') && !runs.some((r) => r.final.val_accuracy !== null)) return 'train_loss'
  return 'val_accuracy'
}

/** The script as the user named it: its file name and arguments (argv[0] is its copy inside the target). */
function scriptCommand(argv: string[]): string {
  const [script, ...args] = argv
  return [script?.split('/').pop() ?? '?', ...args].join(' ')
}

/** How a user's script ran in each target: argv, steps, truncation, seeding, the observer check. */
function scriptSection(report: AuditReport, width: number): string[] {
  const out: string[] = []
  for (const t of report.targets) {
    const r = t.runs.find((x) => x.script)
    const s = r?.script
    if (!s) continue
    const unit = s.step_definition === 'backward' ? 'step(s) by backward() (no torch.optim optimizer)' : 'step(s)'
    const closures = s.closures ? `, closures run ${s.closures.evaluations}× (each step records its first)` : ''
    const steps = `${s.steps_recorded ?? '?'} ${unit}${closures}${s.truncated ? ' (stopped on purpose at --max-steps)' : ''}`
    const observer = s.observer_check
      ? `; observer check: ${s.observer_check.equal ? 'traced and untraced runs end bitwise equal' : `traced and untraced runs differ (${(s.observer_check.differing ?? []).slice(0, 3).join(', ')})`}`
      : ''
    const overridden = r!.knobs_overridden?.length ? `; set by the script itself: ${r!.knobs_overridden.join(', ')}` : ''
    out.push(
      wrapText(
        `Script #${t.index}: ${safeText(scriptCommand(s.argv ?? []), 300)} — ${steps}, ended ${safeText(s.end ?? '?', 40)}${observer}${safeText(overridden, 300)}`,
        width,
        '  ',
      ),
    )
    const nb = s.notebook
    if (nb) {
      const magics = nb.skipped_magics.map((m) => `${safeText(m.magic, 60)} (cell ${m.cell})`)
      const raised = nb.errors.map((e) => `cell ${e.cell} (${safeText(e.first_line, 60)}): ${safeText(e.error, 120)}`)
      out.push(
        wrapText(
          `  notebook: ${nb.cells_run} of ${nb.cells} code cell(s) run${nb.ipython ? ' through IPython' : ''}${magics.length ? `; line magics skipped (no IPython in the target): ${magics.join(', ')}` : ''}`,
          width,
          '    ',
        ),
      )
      if (raised.length) out.push(wrapText(`  cells that raised (--allow-errors went on): ${raised.join('; ')}`, width, '    '))
    }
    if (r!.metrics)
      out.push(
        wrapText(
          `  reported: ${Object.entries(r!.metrics)
            .map(([k, v]) => `${safeText(k, 60)} ${formatNumber(v)}`)
            .join(', ')}`,
          width,
          '    ',
        ),
      )
  }
  const sizes = scriptWorldSizesNote(report)
  if (sizes) out.push(wrapText(sizes, width, '  '))
  if (out.length) out.push('')
  return out
}

/** What torch.compile made of each compiled target's model: graphs, graph breaks, fused kernels. */
function compiledSection(report: AuditReport, width: number): string[] {
  const out: string[] = []
  for (const t of report.targets) {
    const c = t.runs.find((r) => r.compiled)?.compiled
    if (!c) continue
    const fused = c.regions.filter((r) => r.pass === 'forward' && r.ops.length > 1)
    out.push(
      wrapText(
        `Compiled #${t.index}: ${c.graphs ?? '?'} graph(s), ${c.graph_breaks ?? '?'} graph break(s), ${c.regions.length} generated kernel(s); fused in the forward pass:`,
        width,
        '  ',
      ),
    )
    for (const r of fused.slice(0, 12)) {
      const modules = r.modules.length ? ` — ${r.modules.join(', ')}` : ''
      out.push(wrapText(`  ${safeText(r.ops.join(' + '), 200)}${safeText(modules, 300)}`, width, '    '))
    }
    if (fused.length > 12) out.push(`  … ${fused.length - 12} more in the JSON report`)
    out.push('')
  }
  return out
}

/** `#2 r1`: a run by target number and repeat (the full names are in the Targets list). */
const ref = (r: PairRecord['a']) => `#${r.target} r${r.repeat}`

function comparisonsSection(report: AuditReport, width: number): string[] {
  if (report.comparisons.length === 0) return []
  const rmse = report.comparisons.some((c) => c.outcome.rmse_delta !== undefined)
  const rows = [['kind', 'a', 'b', 'result', 'first divergence', rmse ? 'Δ RMSE' : 'Δ accuracy']]
  for (const c of report.comparisons) {
    const first = c.divergence.bitwise_identical ? '—' : safeText(describeFirst(c), 200)
    rows.push([
      c.role,
      ref(c.a),
      ref(c.b),
      result(c),
      first,
      formatSigned(rmse ? (c.outcome.rmse_delta ?? null) : c.outcome.accuracy_delta),
    ])
  }
  return ['Comparisons', fitTable(rows, width)]
}

function fingerprintSection(report: AuditReport, width: number, max: number, once = false): string[] {
  const out: string[] = []
  const pairs = report.comparisons.filter((p) => p.role !== 'repeat' && p.fingerprint_changed > 0)
  // several workloads compare the same two environments: their fingerprint differences once
  const shown = once ? pairs.filter((p, i) => pairs.findIndex((q) => q.a.target === p.a.target && q.b.target === p.b.target) === i) : pairs
  for (const c of shown) {
    out.push(`Fingerprint differences: ${ref(c.a)} → ${ref(c.b)} (${c.fingerprint_changed} changed)`)
    const rows = [['group', 'field', 'a', 'b']]
    for (const r of c.fingerprint_changes.slice(0, max)) rows.push([r.group, safeText(r.path, 200), safeText(r.a, 300), safeText(r.b, 300)])
    out.push(fitTable(rows, width, {shorten: [2, 3]}))
    if (c.fingerprint_changed > max) out.push(`… ${c.fingerprint_changed - max} more in the JSON report`, '')
  }
  return out
}

function largestSection(report: AuditReport, width: number): string[] {
  const out: string[] = []
  for (const c of report.comparisons.filter((p) => p.divergence.worst.length > 0).slice(0, 2)) {
    out.push(`Largest differences at stored steps: ${ref(c.a)} → ${ref(c.b)}`)
    const rows = [['step', 'entry', 'phase', 'max abs', 'rel L2']]
    for (const w of c.divergence.worst.slice(0, 8)) {
      rows.push([String(w.step), safeText(w.name, 200), w.phase, formatNumber(w.max_abs), formatNumber(w.rel_l2)])
    }
    out.push(fitTable(rows, width, {shorten: [1]}))
  }
  return out
}

function attributionSection(report: AuditReport, width: number): string[] {
  const at = report.attribution!
  const out: string[] = []
  if (at.noise_floor.length > 0) {
    const rows = [['target', 'repeats', 'result']]
    for (const f of at.noise_floor) {
      rows.push([
        `#${f.target}`,
        String(f.repeats),
        f.bitwise ? 'bitwise reproducible' : `${f.differing_entries} entries vary between repeats`,
      ])
    }
    out.push('Noise floor (repeats inside each target)', fitTable(rows, width))
  }
  if (at.seeds) {
    const rows = [['target', `${at.seeds.metric === 'val_rmse' ? 'RMSE' : 'accuracy'} mean ± sd`, 'val loss mean ± sd']]
    const ms = (m: {mean: number | null; sd: number | null}) => `${formatNumber(m.mean)} ± ${formatNumber(m.sd)}`
    for (const t of at.seeds.per_target) rows.push([`#${t.target}`, ms(t.accuracy), ms(t.loss)])
    out.push(`Seed variance (seeds ${at.seeds.seeds.join(', ')})`, fitTable(rows, width))
    for (const d of at.seeds.differences) out.push(wrapText(`  #${d.b} vs #${d.a}: ${safeText(d.sentence, 400)}`, width, '    '))
    out.push('')
  }
  const knobRuns = at.experiments.filter((e) => e.kind !== 'replay')
  const replays = at.experiments.filter((e) => e.kind === 'replay')
  if (knobRuns.length > 0) {
    const rows = [['id', 'rerun', 'aligned knobs', 'outcome', 'first divergence after']]
    for (const e of knobRuns) {
      const shown = (v: unknown) => (v === null || v === undefined ? 'unset' : safeText(v, 40))
      const knobs = e.knobs.map((k) => `${k.name}: ${shown(k.from)} → ${shown(k.to)}`).join(', ')
      const after = e.first_divergence_after
        ? `step ${e.first_divergence_after.step}, ${safeText(e.first_divergence_after.entry, 200)}`
        : '—'
      rows.push([e.id, `#${e.target} (as #${e.against})`, knobs, e.outcome, after])
    }
    out.push('Counterfactual reruns', fitTable(rows, width))
  }
  if (replays.length > 0) {
    out.push('Op replays (identical inputs, replayed in each target)')
    for (const e of replays)
      out.push(
        wrapText(
          `  ${safeText(e.id, 20)} ${safeText(e.op ?? 'op', 120)}, #${e.against} and #${e.target}: ${e.outcome} — ${safeText(e.note, 500)}`,
          width,
          '    ',
        ),
      )
    out.push('')
  }
  const took = explainSecondsLine(at)
  if (took) out.push(wrapText(took, width, '  '), '')
  out.push(...whereLines(at, width))
  out.push(...suspectsSection(at, width))
  if (at.unexercised?.length) {
    out.push('Differs, not exercised')
    for (const u of at.unexercised)
      out.push(wrapText(`  ${safeText(u.name, 80)}: ${safeText(u.a, 60)} → ${safeText(u.b, 60)}, ${safeText(u.note, 200)}`, width, '    '))
    out.push('')
  }
  return out
}

function whereLines(at: NonNullable<AuditReport['attribution']>, width: number): string[] {
  const loc = (w: NonNullable<typeof at.where>) =>
    `${w.phase} phase, ${safeText(w.entry, 200)}${w.module_type ? ` (${safeText(w.module_type, 60)})` : ''}, step ${w.step}`
  const out: string[] = []
  if (at.where) out.push(wrapText(`Where it starts: ${loc(at.where)}`, width, '  '))
  if (at.residual) out.push(wrapText(`With the differing knobs aligned it starts later: ${loc(at.residual)}`, width, '  '))
  if (out.length > 0) out.push('')
  return out
}

/** Suspects as a numbered list: name, change and confidence on one line, the evidence wrapped under it. */
function suspectsSection(at: NonNullable<AuditReport['attribution']>, width: number): string[] {
  if (at.suspects.length === 0) return []
  const out = ['Suspects']
  for (const s of at.suspects.slice(0, 8)) {
    const change = s.a !== null || s.b !== null ? `: ${safeText(s.a, 80)} → ${safeText(s.b, 80)}` : ''
    out.push(wrapText(`${String(s.rank).padStart(2)}. ${safeText(s.name, 120)}${change} (${s.confidence} confidence)`, width, '      '))
    out.push(wrapText(`    ${safeText(s.evidence, 800)}`, width, '    '))
  }
  out.push('')
  // Plain-words explanations of the top suspects, each once, with its public source.
  const seen = new Set<string>()
  for (const s of at.suspects.slice(0, 3)) {
    if (!s.explanation || seen.has(s.explanation)) continue
    seen.add(s.explanation)
    out.push(wrapText(`Why ${safeText(s.name, 80)}: ${safeText(s.explanation, 1000)}`, width, '  '))
    // a source URL stays whole when it fits on a line of its own (copyable), else it is cut in the middle
    const source = s.source ? safeText(s.source, 300) : null
    if (source) out.push(source.length + 4 <= width ? `  (${source})` : shortenMiddle(source, width))
  }
  out.push('')
  return out
}

function result(c: PairRecord): string {
  if (c.divergence.bitwise_identical) return 'bitwise identical'
  const n = c.divergence.counts
  return `${n.differing}/${n.entries} entries differ`
}
