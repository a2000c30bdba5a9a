#!/usr/bin/env node
// `npm run lint`: the type checker, the formatter and linter for TypeScript (Biome), the
// layering check (dependency-cruiser, .dependency-cruiser.cjs) and the probe's linter (flake8,
// Debian's python3-flake8). Prints one line per check and exits non-zero if any fails.
// With --summary it also prints `N passed, N failed` (scripts/run-tests.mjs counts these); with
// --no-types it leaves out tsc (scripts/run-tests.mjs has just built with it: one tsc a run).

import {spawnSync} from 'node:child_process'

const python = process.env.REPRO_TEST_PYTHON ?? '/usr/bin/python3'
const npx = (bin, ...args) => ['node', [`node_modules/.bin/${bin}`, ...args]]
const CHECKS = [
  {name: 'types (tsc --noEmit)', cmd: npx('tsc', '-p', 'tsconfig.json', '--noEmit')},
  {name: 'format + lint (biome check)', cmd: npx('biome', 'check', '--error-on-warnings', '.')},
  {name: 'layers (depcruise src)', cmd: npx('depcruise', 'src', '--config', '.dependency-cruiser.cjs')},
  {
    name: 'probe lint (flake8)',
    cmd: [python, ['-m', 'flake8', 'probe', 'bench', 'scripts']],
    missing: /No module named flake8/,
    hint: 'install it: apt-get install python3-flake8 (bash scripts/bootstrap.sh --full does)',
  },
]

const checks = process.argv.includes('--no-types') ? CHECKS.filter((c) => !c.name.startsWith('types')) : CHECKS
let failed = 0
for (const check of checks) {
  const [command, args] = check.cmd
  const r = spawnSync(command, args, {encoding: 'utf8'})
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim()
  if (r.status === 0) {
    console.log(`✔ ${check.name}`)
    continue
  }
  failed++
  console.log(`✖ ${check.name}`)
  if (check.missing?.test(output)) console.log(`  ${check.hint}`)
  else if (output) console.log(output.replace(/^/gm, '  '))
}
if (process.argv.includes('--summary')) console.log(`lint: ${checks.length - failed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
