// Helpers shared by the text renderers: untrusted strings never reach a terminal raw.

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

/** Strip control characters (ANSI escapes included) and cap length: target strings are untrusted. */
export function safeText(value: unknown, max = 120): string {
  const s = value === null || value === undefined ? '—' : typeof value === 'string' ? value : JSON.stringify(value)
  const clean = (s ?? '').replace(/\n/g, ' ').replace(CONTROL, '�')
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean
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
