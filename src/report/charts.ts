// The HTML report's charts: Vega-Lite specs built from the report (pure), rendered on the host
// to static SVG with vega's headless View (no canvas, no scripts, no network). Vega numbers
// its gradient/clip ids globally; they are renumbered per chart so output is deterministic.

import type {TopLevelSpec} from 'vega-lite'
import type {AuditReport, PairRecord, RunRecord} from '../core/report.js'
import {cleanText} from './escape.js'

export interface ChartSpec {
  id: string
  title: string
  /** what the reader is looking at, in one or two sentences (plain text) */
  caption: string
  spec: TopLevelSpec
}

export interface RenderedChart extends Omit<ChartSpec, 'spec'> {
  svg: string
}

const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif'
const CONFIG = {
  aria: false,
  font: FONT,
  background: 'white',
  padding: 8,
  view: {stroke: '#ccc'},
  axis: {labelFontSize: 11, titleFontSize: 12, labelLimit: 260, titleFontWeight: 600, gridColor: '#eee'},
  legend: {labelFontSize: 11, titleFontSize: 12, labelLimit: 340},
  title: {fontSize: 13, anchor: 'start'},
} as const

const LABEL_MAX = 60

/** A label safe for a chart (untrusted text, capped so one name cannot swamp the layout). */
function label(s: unknown): string {
  return cleanText(s, LABEL_MAX)
}

function stepKey(step: string | number): string {
  return typeof step === 'number' ? String(step) : label(step)
}

function stepRank(step: string): number {
  if (step === 'init') return -1
  const n = Number(step)
  return Number.isFinite(n) ? n : Number.MAX_SAFE_INTEGER
}

const PHASE_ORDER = ['forward', 'loss', 'backward', 'update', 'buffer', 'other']

/** Noise floor per entry for a comparison (largest spread between repeats of either target). */
function noiseFloor(report: AuditReport, c: PairRecord): Map<string, number> | null {
  const floors = report.attribution?.noise_floor.filter((n) => n.target === c.a.target || n.target === c.b.target) ?? []
  if (floors.length === 0) return null
  const m = new Map<string, number>()
  for (const f of floors) for (const s of f.spread) m.set(label(s.name), Math.max(m.get(label(s.name)) ?? 0, s.max_abs))
  return m
}

/** (a) Divergence map: entry × stored step, log max-abs error, first divergence boxed, noise floor ticked. */
export function divergenceSpec(report: AuditReport, c: PairRecord, index: number): ChartSpec {
  const d = c.divergence
  type Cell = {entry: string; phase: string; step: string; max_abs: number; text: string}
  // The full map when the report has it (repro ≥ 0.1 audits); older reports carry only the worst.
  const source = d.map ?? d.worst
  const cells: Cell[] = source.map((w) => ({
    entry: label(w.name),
    phase: w.phase,
    step: stepKey(w.step),
    max_abs: w.max_abs,
    text: Number.isNaN(w.max_abs) ? 'NaN' : w.max_abs === Infinity ? '∞' : w.max_abs === 0 ? '0' : '',
  }))
  const fd = d.first_divergence
  const phaseOf = new Map<string, string>(cells.map((x) => [x.entry, x.phase]))
  if (fd && !phaseOf.has(label(fd.entry))) phaseOf.set(label(fd.entry), fd.phase)
  const entries = [...phaseOf.keys()].sort(
    (x, y) => PHASE_ORDER.indexOf(phaseOf.get(x)!) - PHASE_ORDER.indexOf(phaseOf.get(y)!) || (x < y ? -1 : x > y ? 1 : 0),
  )
  const steps = [...new Set([...cells.map((x) => x.step), ...(fd ? [stepKey(fd.step)] : [])])].sort(
    (x, y) => stepRank(x) - stepRank(y) || (x < y ? -1 : 1),
  )
  const measured = cells.filter((x) => x.text === '')
  const special = cells.filter((x) => x.text !== '')
  const perEntry = new Map<string, number>()
  for (const x of measured) perEntry.set(x.entry, Math.max(perEntry.get(x.entry) ?? 0, x.max_abs))
  const floor = noiseFloor(report, c)

  const x = {field: 'step', type: 'ordinal', sort: steps, scale: {domain: steps}, title: 'stored step', axis: {labelAngle: 0}} as const
  const y = {field: 'entry', type: 'nominal', sort: entries, scale: {domain: entries}, title: null} as const
  const heat: Record<string, unknown>[] = []
  if (measured.length > 0) {
    heat.push({
      data: {values: measured},
      mark: {type: 'rect', stroke: 'white', strokeWidth: 1},
      encoding: {
        x,
        y,
        color: {
          field: 'max_abs',
          type: 'quantitative',
          scale: {type: 'log', scheme: 'inferno', reverse: true},
          legend: {title: 'max abs error', format: '.0e', orient: 'bottom', gradientLength: 160},
        },
      },
    })
  }
  if (special.length > 0) {
    heat.push({data: {values: special}, mark: {type: 'rect', fill: '#bbb', stroke: 'white'}, encoding: {x, y}})
    heat.push({data: {values: special}, mark: {type: 'text', fontSize: 11, fontWeight: 700}, encoding: {x, y, text: {field: 'text'}}})
  }
  if (fd) {
    heat.push({
      data: {values: [{entry: label(fd.entry), step: stepKey(fd.step)}]},
      mark: {type: 'rect', fillOpacity: 0, stroke: '#0a7', strokeWidth: 3},
      encoding: {x, y},
    })
  }
  const strip: Record<string, unknown>[] = []
  const floors = floor
    ? [...floor].filter(([e, v]) => v > 0 && Number.isFinite(v) && entries.includes(e)).map(([entry, max_abs]) => ({entry, max_abs}))
    : []
  if (perEntry.size > 0) {
    const xLog = {
      field: 'max_abs',
      type: 'quantitative',
      scale: {type: 'log'},
      title: 'largest max abs',
      axis: {format: '.0e', tickCount: 4, labelOverlap: 'greedy', labelSeparation: 4},
    }
    strip.push({
      data: {values: [...perEntry].map(([entry, max_abs]) => ({entry, max_abs}))},
      mark: {type: 'point', filled: true, size: 60, color: '#333'},
      encoding: {y: {...y, axis: {labels: false, ticks: false, domain: false}}, x: xLog},
    })
    if (floors.length > 0)
      strip.push({
        data: {values: floors},
        mark: {type: 'tick', color: '#d62728', thickness: 3, size: 16},
        encoding: {y: {...y, axis: null}, x: xLog},
      })
  }

  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    config: CONFIG,
    spacing: 12,
    hconcat: [
      {width: {step: 52}, height: {step: 24}, layer: heat},
      ...(strip.length > 0 ? [{width: 180, height: {step: 24}, layer: strip}] : []),
    ],
    resolve: {scale: {y: 'independent'}},
  } as unknown as TopLevelSpec
  const noise = !floor
    ? ''
    : floors.length > 0
      ? ' Red ticks: the noise floor, the largest difference between repeats of the same target; entries without a tick were bitwise identical across repeats.'
      : ' Noise floor: repeats within each target were bitwise identical (0), so every difference here is beyond noise.'
  const first = fd
    ? ` The green box marks the first divergence (step ${cleanText(fd.step, 20)}, ${label(fd.entry)}, ${cleanText(fd.phase, 20)}).`
    : ''
  return {
    id: `divergence-${index}`,
    title: `Divergence map: ${label(c.a.name)} → ${label(c.b.name)}`,
    caption:
      (d.map && d.map.length > 0
        ? `Max abs error of every differing (entry, stored step) pair with stored values on both sides (${d.map.length}), log color scale; right: the largest per entry. Empty cells: identical, or not stored.`
        : d.worst.length > 0
          ? `Max abs error of the ${d.worst.length} most-diverged (entry, stored step) pairs the report keeps, log color scale; right: the largest per entry. Empty cells were not among them.`
          : 'No differing entry has stored values on both sides, so only the first divergence can be placed.') +
      `${first}${noise} ${d.counts.differing} of ${d.counts.entries} trace entries differ in total.`,
    spec,
  }
}

function accuracyDomain(values: number[]): [number, number] {
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  const pad = Math.max(0.005, (hi - lo) * 0.15)
  return [Math.max(0, lo - pad), Math.min(1, hi + pad)]
}

/** (b) The outcome per target (validation accuracy; RMSE for the lstm), one dot per repeat; mean ± sd over seeds when present. */
export function accuracySpec(report: AuditReport, metric: 'val_accuracy' | 'val_rmse' = 'val_accuracy'): ChartSpec | null {
  const names = new Map(report.targets.map((t) => [t.index, label(t.name)]))
  const value = (r: RunRecord) => (metric === 'val_rmse' ? (r.final.val_rmse ?? null) : r.final.val_accuracy)
  const points = report.targets.flatMap((t) =>
    t.runs
      .filter((r) => typeof value(r) === 'number' && Number.isFinite(value(r)))
      .map((r) => ({target: names.get(t.index)!, repeat: `repeat ${r.repeat}`, accuracy: value(r) as number})),
  )
  const seeds = (report.attribution?.seeds?.per_target ?? [])
    .filter((p) => p.accuracy.mean !== null && Number.isFinite(p.accuracy.mean) && names.has(p.target))
    .map((p) => {
      const mean = p.accuracy.mean as number
      const sd = p.accuracy.sd !== null && Number.isFinite(p.accuracy.sd) ? p.accuracy.sd : 0
      return {target: names.get(p.target)!, mean, lo: mean - sd, hi: mean + sd}
    })
  if (points.length === 0 && seeds.length === 0) return null
  const order = [...names.values()].filter((n) => points.some((p) => p.target === n) || seeds.some((s) => s.target === n))
  const all = [...points.map((p) => p.accuracy), ...seeds.flatMap((s) => [s.lo, s.hi])]
  // accuracy lives in [0, 1]; an RMSE only starts at 0
  const domain =
    metric === 'val_rmse' ? ([Math.max(0, Math.min(...all) * 0.95), Math.max(...all) * 1.05] as [number, number]) : accuracyDomain(all)
  const y = {field: 'target', type: 'nominal', sort: order, scale: {domain: order}, title: null}
  const xEnc = {
    type: 'quantitative',
    scale: {domain, zero: false, nice: false},
    title: metric === 'val_rmse' ? 'validation RMSE' : 'validation accuracy',
    axis: {format: '.3f', tickCount: 6},
  }
  const layer: Record<string, unknown>[] = []
  if (seeds.length > 0) {
    layer.push({
      data: {values: seeds},
      mark: {type: 'rule', color: '#e6550d', strokeWidth: 2},
      encoding: {y, x: {field: 'lo', ...xEnc}, x2: {field: 'hi'}},
    })
    layer.push({
      data: {values: seeds},
      mark: {type: 'tick', color: '#e6550d', thickness: 3, size: 18},
      encoding: {y, x: {field: 'mean', ...xEnc}},
    })
  }
  if (points.length > 0) {
    layer.push({
      data: {values: points},
      mark: {type: 'point', filled: true, size: 70, opacity: 0.85},
      encoding: {
        y,
        yOffset: {field: 'repeat', type: 'nominal'},
        x: {field: 'accuracy', ...xEnc},
        color: {field: 'repeat', type: 'nominal', title: null, legend: {orient: 'bottom'}},
      },
    })
  }
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    config: CONFIG,
    width: 520,
    height: {step: Math.max(24, 14 * Math.max(1, ...report.targets.map((t) => t.runs.length)))},
    layer,
  } as unknown as TopLevelSpec
  return {
    id: 'accuracy',
    title: metric === 'val_rmse' ? 'Validation RMSE per target' : 'Validation accuracy per target',
    caption: `One dot per repeat (final epoch).${seeds.length > 0 ? ` Orange: mean ± sd over ${report.attribution?.seeds?.seeds.length ?? 0} seeds.` : ''} Identical values overlap.`,
    spec,
  }
}

/** (c) Loss curves: validation (solid) and training (dashed) loss per epoch, one line per run. */
export function lossSpec(report: AuditReport): ChartSpec | null {
  const values = report.targets.flatMap((t) =>
    t.runs.flatMap((r) =>
      r.epochs.flatMap((e) =>
        (
          [
            ['validation', e.val_loss],
            ['training', e.train_loss],
          ] as const
        )
          .filter(([, v]) => typeof v === 'number' && Number.isFinite(v))
          .map(([metric, loss]) => ({run: `${label(t.name)} r${r.repeat}`, epoch: e.epoch + 1, metric, loss: loss as number})),
      ),
    ),
  )
  if (values.length === 0) return null
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    config: CONFIG,
    width: 520,
    height: 240,
    data: {values},
    mark: {type: 'line', point: {size: 40, filled: true}, strokeWidth: 2},
    encoding: {
      x: {field: 'epoch', type: 'ordinal', title: 'epoch', sort: 'ascending', axis: {labelAngle: 0}},
      y: {field: 'loss', type: 'quantitative', title: 'loss', scale: {zero: false}},
      color: {field: 'run', type: 'nominal', title: null, legend: {orient: 'bottom', columns: 1}},
      strokeDash: {field: 'metric', type: 'nominal', title: null, sort: ['validation', 'training'], legend: {orient: 'bottom'}},
      detail: {field: 'metric'},
    },
  } as unknown as TopLevelSpec
  return {
    id: 'loss',
    title: 'Loss per epoch',
    caption:
      'Validation loss (solid) and training loss (dashed) after each epoch (counted from 1), one line per run; identical runs draw on top of each other.',
    spec,
  }
}

/**
 * Every chart of the report, in page order. Pure. For one workload of several, `workload`
 * prefixes the ids and picks the outcome metric.
 */
export function chartSpecs(report: AuditReport, workload?: {name: string; metric: 'val_accuracy' | 'val_rmse'}): ChartSpec[] {
  if (workload) return chartSpecs(report).map((c) => ({...c, id: `${workload.name}-${c.id}`, title: `${workload.name}: ${c.title}`}))
  const out: ChartSpec[] = []
  report.comparisons.forEach((c, i) => {
    if (!c.divergence.bitwise_identical && ((c.divergence.map ?? c.divergence.worst).length > 0 || c.divergence.first_divergence))
      out.push(divergenceSpec(report, c, i + 1))
  })
  const metric = report.targets.some((t) => t.runs.some((r) => r.workload === 'lstm')) ? 'val_rmse' : 'val_accuracy'
  const acc = accuracySpec(report, metric)
  if (acc) out.push(acc)
  const loss = lossSpec(report)
  if (loss) out.push(loss)
  return out
}

/** Renumbers every id in one SVG (and its references) as `<prefix>-<n>` in order of appearance. */
export function normalizeSvgIds(svg: string, prefix: string): string {
  const ids = new Map<string, string>()
  for (const m of svg.matchAll(/\bid="([^"]+)"/g)) if (!ids.has(m[1]!)) ids.set(m[1]!, `${prefix}-${ids.size + 1}`)
  if (ids.size === 0) return svg
  return svg
    .replace(/\bid="([^"]+)"/g, (_m, id: string) => `id="${ids.get(id) ?? id}"`)
    .replace(/url\(#([^)]+)\)/g, (m, id: string) => (ids.has(id) ? `url(#${ids.get(id)})` : m))
    .replace(/href="#([^"]+)"/g, (m, id: string) => (ids.has(id) ? `href="#${ids.get(id)}"` : m))
}

/** A loader that refuses everything: charts use inline data only, so nothing may be fetched. */
const NO_LOADER = {
  load: () => Promise.reject(new Error('repro charts load no external data')),
  sanitize: () => Promise.reject(new Error('repro charts load no external data')),
  http: () => Promise.reject(new Error('repro charts load no external data')),
  file: () => Promise.reject(new Error('repro charts load no external data')),
}

// Helvetica/Arial advance widths (1/1000 em) for printable ASCII, from space to '~'.
const ASCII_WIDTHS = [
  278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278,
  278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, 667, 778, 722, 667, 611, 722,
  667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556,
  556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
]

/**
 * Text width for layout, from a fixed metrics table: vega's own estimate (0.8 em per
 * character) leaves labels cut short, and measuring with a canvas, where one is installed,
 * would make the output depend on the machine's fonts.
 */
export function textWidth(text: string, fontSize: number, bold = false): number {
  let units = 0
  for (const ch of text) {
    const code = ch.codePointAt(0)!
    units += code >= 32 && code <= 126 ? ASCII_WIDTHS[code - 32]! : code >= 0x1100 ? 1000 : 600
  }
  // system sans-serif fonts (DejaVu Sans on Debian) run wider than Helvetica: err on the wide side
  return (units / 1000) * fontSize * (bold ? 1.26 : 1.18)
}

type VegaItem = {fontSize?: number; fontWeight?: string | number; limit?: number}
function itemWidth(item: VegaItem, text: unknown): number {
  const size = item.fontSize !== undefined && item.fontSize !== null ? Number(item.fontSize) || 0 : 11
  const bold = item.fontWeight === 'bold' || Number(item.fontWeight) >= 600
  const w = textWidth(text === null || text === undefined ? '' : String(text).trim(), size, bold)
  // a label over its limit is cut to fit it (vega truncates with an ellipsis)
  return item.limit !== undefined && item.limit > 0 ? Math.min(w, item.limit) : w
}

const quiet = {level: () => quiet, error: () => quiet, warn: () => quiet, info: () => quiet, debug: () => quiet}

/** Renders one Vega-Lite spec to a static SVG string. */
export async function renderSvg(spec: TopLevelSpec, idPrefix: string): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')])
  ;(vega as unknown as {textMetrics: {width: typeof itemWidth}}).textMetrics.width = itemWidth
  const compiled = vl.compile(spec, {logger: quiet as never}).spec
  const view = new vega.View(vega.parse(compiled), {renderer: 'none', loader: NO_LOADER as never, logLevel: vega.None})
  try {
    const svg = await view.toSVG()
    return normalizeSvgIds(svg, idPrefix)
  } finally {
    view.finalize()
  }
}

export async function renderCharts(
  report: AuditReport,
  workload?: {name: string; metric: 'val_accuracy' | 'val_rmse'},
): Promise<RenderedChart[]> {
  const out: RenderedChart[] = []
  for (const c of chartSpecs(report, workload)) out.push({id: c.id, title: c.title, caption: c.caption, svg: await renderSvg(c.spec, c.id)})
  return out
}
