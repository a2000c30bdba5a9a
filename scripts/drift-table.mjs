#!/usr/bin/env node
// One markdown table from audit reports (repro audit --json, two targets, --seeds N): per
// workload, the first divergent entry, the largest relative error at stored steps, the outcome
// difference with its seed-to-seed 95 % interval, and seconds per run of each side.
//   node scripts/drift-table.mjs "eager vs compile=/tmp/compile.json" "fp32 vs bf16=/tmp/bf16.json"
import {readFileSync} from 'node:fs'

const args = process.argv.slice(2)
if (args.length === 0) {
  console.error('usage: node scripts/drift-table.mjs "label=report.json" …')
  process.exit(2)
}

const pct = (x) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} pp`
const num = (x) => (x === null || x === undefined ? '—' : Number(x).toPrecision(2))
const mean = (xs) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : null)

const rows = [
  '| workload | comparison | first divergent entry | max rel. L2 (stored steps) | Δ outcome, 95 % seed interval | seconds / run (a · b) |',
  '|---|---|---|---|---|---|',
]
for (const arg of args) {
  const at = arg.indexOf('=')
  const label = arg.slice(0, at)
  const report = JSON.parse(readFileSync(arg.slice(at + 1), 'utf8'))
  // a one-workload report has no by_workload: its workload is in the settings (default mlp)
  const only = report.settings?.workloads?.[0] ?? 'mlp'
  const single = {workload: only, attribution: report.attribution, outcome_metric: only === 'lstm' ? 'val_rmse' : 'val_accuracy'}
  for (const w of report.by_workload ?? [single]) {
    const cross = report.comparisons.find((c) => c.role === 'cross' && (c.workload ?? only) === w.workload)
    const fd = cross?.divergence.first_divergence
    const worst = Math.max(0, ...(cross?.divergence.worst ?? []).map((x) => x.rel_l2 ?? 0))
    const d = w.attribution?.seeds?.differences?.[0]
    const rmse = w.outcome_metric === 'val_rmse'
    const delta = d
      ? rmse
        ? `${num(d.diff)} RMSE (${num(d.ci95[0])} … ${num(d.ci95[1])})${d.significant ? ' significant' : ''}`
        : `${pct(d.diff)} (${pct(d.ci95[0])} … ${pct(d.ci95[1])})${d.significant ? ' significant' : ''}`
      : '—'
    const seconds = report.targets
      .map((t) => mean(t.runs.filter((r) => (r.workload ?? only) === w.workload && !r.cached).map((r) => r.seconds)))
      .map((s) => (s === null ? '—' : s.toFixed(1)))
      .join(' · ')
    const entry = cross?.divergence.bitwise_identical ? 'bitwise identical' : fd ? `step ${fd.step}, ${fd.entry}` : '—'
    rows.push(`| ${w.workload} | ${label} | ${entry} | ${worst ? worst.toExponential(1) : '—'} | ${delta} | ${seconds} |`)
  }
}
console.log(rows.join('\n'))
