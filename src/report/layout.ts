// Terminal layout: tables sized to the terminal, prose wrapped at word boundaries, and long
// names (paths, image references) shortened in the middle. Pure: width in, string out.

import {table} from 'table'

/** The narrowest layout we try to fit; narrower terminals get this width and wrap. */
export const MIN_WIDTH = 40
export const DEFAULT_WIDTH = 80

/** The terminal width: COLUMNS when set (node ignores it), else the stream's columns, else 80. */
export function terminalWidth(env: NodeJS.ProcessEnv, columns: number | undefined): number {
  const fromEnv = Number(env['COLUMNS'])
  const w = Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : columns && columns > 0 ? columns : DEFAULT_WIDTH
  return Math.max(MIN_WIDTH, w)
}

/** `text` cut to `max` characters by replacing its middle with `…`: both ends stay readable. */
export function shortenMiddle(text: string, max: number): string {
  const chars = [...text]
  if (chars.length <= max) return text
  if (max <= 1) return '…'
  const head = Math.ceil((max - 1) / 2)
  const tail = max - 1 - head
  return `${chars.slice(0, head).join('')}…${tail > 0 ? chars.slice(-tail).join('') : ''}`
}

/**
 * A cell cut to `max`: a path keeps its end (the file name is what tells paths apart), anything
 * else keeps both ends.
 */
export function shortenCell(text: string, max: number): string {
  const chars = [...text]
  if (chars.length <= max) return text
  if (text.startsWith('/') && max > 1) return `…${chars.slice(-(max - 1)).join('')}`
  return shortenMiddle(text, max)
}

/** Wrap prose at word boundaries to `width` columns; lines after the first get `indent`. Words longer than a line are cut. */
export function wrapText(text: string, width: number, indent = ''): string {
  const lines: string[] = []
  // the first line keeps its own indentation (e.g. a list item's two spaces)
  const lead = /^[ \t]*/.exec(text)![0]
  let current = lead
  const available = () => width - (lines.length === 0 ? 0 : indent.length)
  const flush = () => {
    lines.push(`${lines.length === 0 ? '' : indent}${current}`.trimEnd())
    current = ''
  }
  for (const paragraph of text.split('\n')) {
    for (const word of paragraph.split(/ +/).filter(Boolean)) {
      for (const piece of chunk(word, Math.max(1, width - indent.length))) {
        if (current === '' || current === lead) current += piece
        else if ([...current].length + 1 + [...piece].length <= available()) current += ` ${piece}`
        else {
          flush()
          current = piece
        }
      }
    }
    flush()
  }
  return lines.join('\n')
}

function chunk(word: string, size: number): string[] {
  const chars = [...word]
  if (chars.length <= size) return [word]
  const out: string[] = []
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''))
  return out
}

export interface FitOptions {
  /** columns whose cells are cut (paths keep their end, other text both ends) instead of wrapped */
  shorten?: number[]
  /** no column is made narrower than this (or its natural width, if smaller) */
  minColumn?: number
}

const BORDER = {singleLine: false, drawHorizontalLine: (i: number, rows: number) => i === 0 || i === 1 || i === rows}

/**
 * A table no wider than `width`: columns keep their natural width when everything fits;
 * otherwise the widest columns give way first (cells wrap at words, or are shortened in the
 * middle for `shorten` columns) until the table fits.
 */
export function fitTable(rows: string[][], width: number, opts: FitOptions = {}): string {
  const n = Math.max(...rows.map((r) => r.length))
  const natural = Array.from({length: n}, (_, c) => Math.max(1, ...rows.map((r) => longestLine(r[c] ?? ''))))
  const budget = Math.max(n, width - (3 * n + 1))
  const widths = shareWidth(natural, budget, opts.minColumn ?? 6)
  const shorten = new Set(opts.shorten ?? [])
  const cells = rows.map((r) => Array.from({length: n}, (_, c) => (shorten.has(c) ? shortenCell(r[c] ?? '', widths[c]!) : (r[c] ?? ''))))
  const columns = Object.fromEntries(widths.map((w, c) => [c, {width: w, wrapWord: !shorten.has(c)}]))
  return table(cells, {...BORDER, columns})
}

/** Column widths summing to at most `budget`: cap the widest columns at a common limit (water-filling). */
export function shareWidth(natural: number[], budget: number, minColumn: number): number[] {
  const total = natural.reduce((s, w) => s + w, 0)
  if (total <= budget) return natural
  const floor = natural.map((w) => Math.min(w, minColumn))
  let lo = 0
  let hi = Math.max(...natural)
  // the largest cap C with Σ max(floor, min(natural, C)) ≤ budget
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    const used = natural.reduce((s, w, c) => s + Math.max(floor[c]!, Math.min(w, mid)), 0)
    if (used <= budget) lo = mid
    else hi = mid - 1
  }
  const widths = natural.map((w, c) => Math.max(floor[c]!, Math.min(w, lo)))
  // hand out what the common cap left over, widest-wanting columns first
  let spare = budget - widths.reduce((s, w) => s + w, 0)
  for (const c of natural.map((_, i) => i).sort((x, y) => natural[y]! - widths[y]! - (natural[x]! - widths[x]!))) {
    if (spare <= 0) break
    const add = Math.min(spare, natural[c]! - widths[c]!)
    widths[c]! += add
    spare -= add
  }
  return widths
}

function longestLine(cell: string): number {
  return Math.max(...cell.split('\n').map((l) => [...l].length))
}
