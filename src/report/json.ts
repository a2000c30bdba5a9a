// JSON rendering: JSON has no Infinity/NaN, so non-finite metrics become the strings
// "Infinity", "-Infinity" and "NaN" instead of silently turning into null.

export function nonFiniteReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return Number.isNaN(value) ? 'NaN' : value > 0 ? 'Infinity' : '-Infinity'
  if (typeof value === 'bigint') return value.toString()
  return value
}

export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, nonFiniteReplacer, 2)}\n`
}
