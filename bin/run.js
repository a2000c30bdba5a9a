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
// One bundle holds @oclif/core and every command with all it imports (scripts/bundle.mjs, built
// by `npm run build`): one file to load instead of ~370 modules.
// @oclif/core's index checks node against its own engines range (>=18) with semver, ~15 ms of
// loading on every start; ours (>=20, package.json) is stricter, so that check is skipped. Set
// only while it loads, so the commands' children (engines, probes) do not inherit it.
const engineWarning = process.env.OCLIF_DISABLE_ENGINE_WARNING
process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
const {execute} = await import('../dist/src/bundle/repro.js')
if (engineWarning === undefined) delete process.env.OCLIF_DISABLE_ENGINE_WARNING
else process.env.OCLIF_DISABLE_ENGINE_WARNING = engineWarning
performance.mark('repro:bundle')

await execute({dir: import.meta.url})
