// REPRO_TIMINGS=1: where a command's wall time goes. Off by default (then every helper is a
// plain call). Spans are recorded by category (engine calls, git, the host fingerprint, reading
// cached runs, rendering, …) in milliseconds since the process started (performance.now()),
// and printed as one table on stderr when the command ends (docs/ci.md).

export interface TimingSpan {
  category: string
  label: string
  start: number
  end: number
}

const spans: TimingSpan[] = []
let enabled = process.env['REPRO_TIMINGS'] === '1'

export function timingsEnabled(): boolean {
  return enabled
}

/** Tests: switch recording on or off, and drop what was recorded. */
export function resetTimings(on: boolean): void {
  enabled = on
  spans.length = 0
}

/** Record a span that has ended (ms since process start). */
export function recordSpan(category: string, label: string, start: number, end: number = performance.now()): void {
  if (enabled) spans.push({category, label, start, end})
}

/** Run `work`, recording its wall time under `category` (whether it resolves or throws). */
export async function timed<T>(category: string, label: string, work: () => Promise<T>): Promise<T> {
  if (!enabled) return work()
  const start = performance.now()
  try {
    return await work()
  } finally {
    recordSpan(category, label, start)
  }
}

/** The same for synchronous work. */
export function timedSync<T>(category: string, label: string, work: () => T): T {
  if (!enabled) return work()
  const start = performance.now()
  try {
    return work()
  } finally {
    recordSpan(category, label, start)
  }
}

export function recordedSpans(): readonly TimingSpan[] {
  return spans
}

/** Total length of the union of intervals (overlapping spans counted once). */
export function unionMs(intervals: {start: number; end: number}[]): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start)
  let total = 0
  let curStart = Number.NEGATIVE_INFINITY
  let curEnd = Number.NEGATIVE_INFINITY
  for (const {start, end} of sorted) {
    if (start > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart
      curStart = start
      curEnd = end
    } else if (end > curEnd) curEnd = end
  }
  if (curEnd > curStart) total += curEnd - curStart
  return total
}

/**
 * The table: one row per category in order of first start — first start, wall time (the union
 * of its spans), the number of spans and their summed time (> wall when they overlapped) — then
 * the time no category covers, and the total.
 */
export function timingsTable(spansIn: readonly TimingSpan[] = spans, total: number = performance.now()): string {
  const order: string[] = []
  const by = new Map<string, TimingSpan[]>()
  for (const s of [...spansIn].sort((a, b) => a.start - b.start)) {
    if (!by.has(s.category)) {
      by.set(s.category, [])
      order.push(s.category)
    }
    by.get(s.category)!.push(s)
  }
  const ms = (x: number) => x.toFixed(0)
  const rows: string[][] = [['phase', 'from ms', 'wall ms', 'calls', 'sum ms']]
  for (const c of order) {
    const list = by.get(c)!
    const sum = list.reduce((a, s) => a + (s.end - s.start), 0)
    rows.push([c, ms(list[0]!.start), ms(unionMs(list)), String(list.length), ms(sum)])
  }
  const covered = unionMs([...spansIn])
  rows.push(['(not in a phase above)', '', ms(Math.max(0, total - covered)), '', ''])
  rows.push(['total (process start to now)', '', ms(total), '', ''])
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  const details = order
    .filter((c) => by.get(c)!.length > 1 || by.get(c)![0]!.label !== c)
    .map(
      (c) =>
        `  ${c}: ${by
          .get(c)!
          .map((s) => `${s.label} ${ms(s.end - s.start)}`)
          .join(', ')}`,
    )
  return ['repro timings (REPRO_TIMINGS=1):', ...rows.map((r) => `  ${line(r)}`), ...details, ''].join('\n')
}

/**
 * Startup as spans, from the marks bin/run.js sets: node's own start (to bin/run.js), then
 * module loading (the bundle: @oclif/core and every command with all it imports; then oclif's
 * config and the command) up to now, when the command's run() begins.
 */
export function recordStartup(): void {
  if (!enabled) return
  const mark = (name: string) => performance.getEntriesByName(name, 'mark')[0]?.startTime
  const bin = mark('repro:bin')
  const bundle = mark('repro:bundle')
  const now = performance.now()
  if (bin === undefined) {
    recordSpan('node start + module loading', 'until the command ran', 0, now)
    return
  }
  recordSpan('node start', 'node start', 0, bin)
  if (bundle !== undefined) recordSpan('module loading', 'the bundle (@oclif/core and the commands)', bin, bundle)
  recordSpan('module loading', 'oclif config and the command', bundle ?? bin, now)
}
