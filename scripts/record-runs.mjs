#!/usr/bin/env node
// Records real audits as run directories under fixtures/runs/<case>/ for the recorded-run
// target (src/targets/recorded.ts): every probe run of the audit — repeats, extra seeds, zoom
// and counterfactual reruns — with its inputs/config.json (the lookup key), its artifacts and
// the real audit's report.json (what a replayed audit must agree with). Data files and the
// other report formats are dropped. Needs the real targets: `bash scripts/bootstrap.sh --full`.
//
//   node scripts/record-runs.mjs [case…]      (build first; default: every case)

import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, renameSync, rmSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const FAST = ['--epochs', '1', '--rows', '512']
export const CASES = {
  // torch 1.13 vs 2.6 with the thread counts set apart: a knob that explains part, a library the rest
  'bookworm-trixie': [
    '--image',
    'repro-fixture:bookworm',
    '--image',
    'repro-fixture:trixie',
    '--set',
    '1:threads=1',
    '--set',
    '2:threads=2',
    '--repeats',
    '2',
    '--seeds',
    '2',
    ...FAST,
  ],
  // one python against itself with threads changed, no stored steps: zoom, then the knob confirmed
  'python-threads': [
    '--python',
    '/usr/bin/python3',
    '--python',
    '/usr/bin/python3',
    '--set',
    '2:threads=2',
    '--repeats',
    '2',
    '--store-steps',
    'none',
    ...FAST,
  ],
}

for (const name of process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(CASES)) {
  const args = CASES[name]
  if (!args) throw new Error(`unknown case ${name}; cases: ${Object.keys(CASES).join(', ')}`)
  const out = path.join(root, 'fixtures', 'runs', name)
  rmSync(out, {recursive: true, force: true})
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'bin', 'run.js'), 'audit', ...args, '--no-cache', '--format', 'json', '--out', out],
    {
      encoding: 'utf8',
      env: {...process.env, NO_COLOR: '1'},
    },
  )
  if (r.status !== 0 && r.status !== 1) throw new Error(`${name}: audit exited ${r.status}\n${r.stdout}\n${r.stderr}`)
  for (const dir of readdirSync(out, {withFileTypes: true}).filter((e) => e.isDirectory())) {
    rmSync(path.join(out, dir.name, 'inputs', 'data.safetensors'), {force: true})
  }
  if (existsSync(path.join(out, 'report.json'))) renameSync(path.join(out, 'report.json'), path.join(out, 'recorded-report.json'))
  console.log(`recorded ${name}: exit ${r.status}, ${readdirSync(out).length - 1} runs in ${path.relative(root, out)}`)
}
