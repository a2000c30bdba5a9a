// Helpers shared by the text renderers: untrusted strings never reach a terminal raw.

import {cleanText} from './escape.js'

/**
 * Untrusted text for the terminal: the same sanitizing as every other format (cleanText:
 * control characters, ANSI escapes, bidi overrides and lone surrogates become U+FFFD,
 * newlines become spaces), capped at `max`.
 */
export function safeText(value: unknown, max = 120): string {
  return cleanText(value, max)
}

export function formatNumber(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return '—'
  if (Number.isNaN(x)) return 'NaN'
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞'
  if (x === 0) return '0'
  const a = Math.abs(x)
  return a >= 1e-3 && a < 1e6 ? x.toFixed(digits) : x.toExponential(2)
}

export function formatSigned(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return '—'
  return (x > 0 ? '+' : '') + formatNumber(x, digits)
}

/** A knob's value in an experiment, as the Markdown and HTML reports show it: JSON, or `unset` where the target has none. */
export function knobValue(v: unknown): string {
  return v === null ? 'unset' : (JSON.stringify(v) ?? 'undefined')
}
