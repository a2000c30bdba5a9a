#!/usr/bin/env node
// REPRO_TIMINGS=1 splits startup at these marks (src/env/timings.ts)
performance.mark('repro:bin')
// oclif wraps --help text to OCLIF_COLUMNS (else 80, or the TTY's width) but then indents flag
// descriptions past it by a few columns: give it the terminal's width (COLUMNS, the TTY's, else
// 80) less that margin, so help fits the terminal like the rest of repro's output.
if (!process.env.OCLIF_COLUMNS) {
  const columns = Number.parseInt(process.env.COLUMNS ?? '', 10) || process.stdout.columns || 80
  process.env.OCLIF_COLUMNS = String(Math.max(40, columns - 4))
}
const {execute} = await import('@oclif/core')
performance.mark('repro:oclif')

await execute({dir: import.meta.url})
