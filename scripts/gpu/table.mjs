#!/usr/bin/env node
// The GPU validation table from the runs brought back from the GPU box (run_variants.py's packs,
// unpacked into one folder: a `repro prepare --variants` folder, repro.prepared/2, each run's
// artifacts in RUN/out/, or keep-fixtures.mjs's trimmed copy of one — or a repro.prepared/1
// folder of an older repro, artifacts in VARIANT/WORKLOAD-rN/, as fixtures/runs/gpu-h200):
// per workload and variant — bitwise reproducible across repeats or not (and which entries vary
// run to run), the first entry that differs from the default variant, the largest relative L2
// error per layer against the default (where stored values came back), the nondeterministic-op
// alerts, and seconds per run. Uses repro's own compare (dist/, so build first).
//
//   node scripts/gpu/table.mjs RUNS_DIR [--json FILE] > table.md

import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const load = (p) => import(path.join(root, 'dist/src', p))
const {readFingerprintFile, readRunFile, readTraceFile, readStoredValues} = await load('artifacts/run-dir.js')
const {compareTraces} = await load('core/trace-compare.js')
const {TOLERANCE} = await load('core/pairs.js')

const dir = process.argv[2]
const jsonOut = process.argv.includes('--json') ? process.argv[process.argv.indexOf('--json') + 1] : null
const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))
const old = manifest.schema === 'repro.prepared/1'
if (
  !old &&
  (manifest.schema !== 'repro.prepared/2' || !manifest.runs?.length || manifest.runs.some((r) => typeof r.variant !== 'string'))
) {
  console.error(
    `${dir}: not the knob variants run_variants.py ran (${manifest.schema}, runs without variant names); for a folder of --python/--image targets use repro compare ${dir}`,
  )
  process.exit(2)
}
/** Where a run's artifacts are: /1, its folder; /2, its out/ (where node_runner.py leaves them). */
const artifactsOf = (run) => (old ? path.join(dir, run.dir) : path.join(dir, run.dir, 'out'))
const results = existsSync(path.join(dir, 'results.json')) ? JSON.parse(readFileSync(path.join(dir, 'results.json'), 'utf8')) : {runs: []}

async function read(run) {
  const d = artifactsOf(run)
  const outcome = await readRunFile(d, run.dir).catch((e) => ({status: 'error', error: {type: 'unreadable', message: e.message}}))
  if (outcome.status !== 'ok') return {outcome, trace: null, values: new Map()}
  const trace = await readTraceFile(d, run.dir)
  const values = existsSync(path.join(d, 'tensors.safetensors')) ? await readStoredValues(d, run.dir) : new Map()
  const fingerprint = await readFingerprintFile(d, run.dir).catch(() => null)
  return {outcome, trace, values, fingerprint}
}

const byKey = new Map()
for (const run of manifest.runs) byKey.set(`${run.variant}|${run.workload}|${run.repeat}`, {...run, ...(await read(run))})
const variants = [...new Set(manifest.runs.map((r) => r.variant))]
const workloads = [...new Set(manifest.runs.map((r) => r.workload))]
const wall = new Map(results.runs.map((r) => [r.dir, r.wall_seconds]))

const fmt = (x) => (x === null || x === undefined ? '—' : Math.abs(x) >= 1e-3 && Math.abs(x) < 1e4 ? x.toPrecision(3) : x.toExponential(2))
const rows = []
for (const w of workloads) {
  const base = byKey.get(`default|${w}|1`)
  for (const v of variants) {
    const r1 = byKey.get(`${v}|${w}|1`)
    const r2 = byKey.get(`${v}|${w}|2`)
    const row = {workload: w, variant: v}
    if (!r1?.trace) {
      row.error = r1?.outcome?.error ? `${r1.outcome.error.type}: ${r1.outcome.error.message}`.slice(0, 300) : 'no run'
      rows.push(row)
      continue
    }
    if (r2?.trace) {
      const c = compareTraces(r1.trace, r1.values, r2.trace, r2.values, TOLERANCE)
      row.repeats_bitwise = c.bitwise_identical
      row.repeat_first = c.first_divergence ? `step ${c.first_divergence.step}, ${c.first_divergence.entry}` : null
      row.repeat_varying = [...new Set(c.differing.map((d) => d.name.replace(/#\d+$/, '')))].slice(0, 12)
    }
    if (base?.trace && v !== 'default') {
      const c = compareTraces(base.trace, base.values, r1.trace, r1.values, TOLERANCE)
      row.vs_default_bitwise = c.bitwise_identical
      row.vs_default_first = c.first_divergence ? `step ${c.first_divergence.step}, ${c.first_divergence.entry}` : null
      // largest relative L2 per layer (forward outputs and gradients) where both sides stored values
      const perLayer = new Map()
      for (const d of c.differing) {
        if (!d.metrics || !/^(fwd|grad|out)/.test(d.name)) continue
        perLayer.set(d.name, Math.max(perLayer.get(d.name) ?? 0, d.metrics.rel_l2))
      }
      row.rel_l2_by_layer = Object.fromEntries([...perLayer].sort((a, b) => b[1] - a[1]).slice(0, 8))
      row.max_rel_l2 = perLayer.size ? Math.max(...perLayer.values()) : null
    }
    row.alerts = (r1.outcome.alerts ?? []).map((a) => `${a.message.slice(0, 160)} ×${a.count}`)
    row.train_seconds = r1.outcome.timings?.train_seconds ?? null
    row.total_seconds = r1.outcome.timings?.total_seconds ?? null
    row.wall_seconds = wall.get(r1.dir) ?? null
    row.outcome =
      r1.outcome.outcome_metric === 'val_rmse' ? `rmse ${fmt(r1.outcome.final.val_rmse)}` : `acc ${fmt(r1.outcome.final.val_accuracy)}`
    rows.push(row)
  }
}
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify(rows, null, 1)}\n`)
const out = [
  '| workload | variant | repeats bitwise | run-to-run first difference | vs default: first difference | max rel L2 vs default (layer) | outcome | train s | total s |',
  '|---|---|---|---|---|---|---|---|---|',
]
for (const r of rows) {
  if (r.error) {
    out.push(`| ${r.workload} | ${r.variant} | error | ${r.error.replace(/\|/g, '\\|')} | | | | | |`)
    continue
  }
  const top = Object.entries(r.rel_l2_by_layer ?? {})[0]
  out.push(
    `| ${r.workload} | ${r.variant} | ${r.repeats_bitwise === undefined ? '—' : r.repeats_bitwise ? 'yes' : 'no'} | ${r.repeat_first ?? '—'} | ${r.variant === 'default' ? '(reference)' : r.vs_default_bitwise ? 'identical' : (r.vs_default_first ?? '—')} | ${top ? `${fmt(top[1])} (${top[0]})` : '—'} | ${r.outcome} | ${fmt(r.train_seconds)} | ${fmt(r.total_seconds)} |`,
  )
}
const alerts = rows.filter((r) => r.alerts?.length)
if (alerts.length) {
  out.push('', 'Nondeterministic-op alerts (deterministic=warn and others):', '')
  for (const r of alerts) for (const a of r.alerts) out.push(`- ${r.workload} / ${r.variant}: ${a.replace(/\n/g, ' ')}`)
}
console.log(out.join('\n'))
