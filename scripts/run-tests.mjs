#!/usr/bin/env node
// The test command: the lint checks (scripts/lint.mjs: types, Biome, layering, flake8), node's
// test runner over the compiled unit and integration tests, then the probe's own Python tests,
// and one plain `N passed, N failed` line for everything.

import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync} from 'node:fs'
import path from 'node:path'

const python = process.env.REPRO_TEST_PYTHON ?? '/usr/bin/python3'
let passed = 0
let failed = 0
let skipped = 0

const lint = spawnSync(process.execPath, ['scripts/lint.mjs', '--summary'], {stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8'})
process.stdout.write(lint.stdout)
const lintCounts = /^lint: (\d+) passed, (\d+) failed$/m.exec(lint.stdout ?? '')
const lintPassed = Number(lintCounts?.[1] ?? 0)
const lintFailed = lintCounts ? Number(lintCounts[2]) : 1
passed += lintPassed
failed += lintFailed

// Test files in a fixed order (unit, then integration, each sorted); REPRO_TEST_ORDER=reverse
// runs them backwards, to show no test depends on what an earlier one left behind.
const testFiles = (dir) =>
  existsSync(dir)
    ? readdirSync(dir, {recursive: true})
        .filter((f) => f.endsWith('.test.js'))
        .sort()
        .map((f) => path.join(dir, f))
    : []
const files = [...testFiles('dist/test/unit'), ...testFiles('dist/test/integration')]
if (process.env.REPRO_TEST_ORDER === 'reverse') files.reverse()
// zz-* files check what the whole suite left behind: last in either order
files.sort((a, b) => Number(path.basename(a).startsWith('zz-')) - Number(path.basename(b).startsWith('zz-')))
const node = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
  maxBuffer: 64 * 1024 * 1024,
})
process.stdout.write(node.stdout)
const count = (name) => Number((new RegExp(`^ℹ ${name} (\\d+)$`, 'm').exec(node.stdout) ?? [])[1] ?? 0)
passed += count('pass')
failed += count('fail') + (node.status !== 0 && count('fail') === 0 ? 1 : 0)
skipped += count('skipped')

const py = spawnSync(python, ['-m', 'unittest', 'discover', '-s', 'tests', '-v'], {
  cwd: 'probe',
  stdio: ['ignore', 'inherit', 'pipe'],
  encoding: 'utf8',
})
process.stderr.write(py.stderr ?? '')
const ran = Number((/^Ran (\d+) tests?/m.exec(py.stderr ?? '') ?? [])[1] ?? 0)
const bad = /FAILED \((.*)\)/.exec(py.stderr ?? '')
const pyFailed = bad ? [...bad[1].matchAll(/(?:failures|errors)=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0) : py.status === 0 ? 0 : 1
const pySkipped = Number((/skipped=(\d+)/.exec(py.stderr ?? '') ?? [])[1] ?? 0)
passed += ran - pyFailed - pySkipped
failed += pyFailed
skipped += pySkipped

console.log(
  `\nnode: ${count('pass')} passed, ${count('fail')} failed · probe (python): ${ran - pyFailed - pySkipped} passed, ${pyFailed} failed`,
)
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`)
process.exit(failed === 0 && lint.status === 0 && node.status === 0 && py.status === 0 ? 0 : 1)
