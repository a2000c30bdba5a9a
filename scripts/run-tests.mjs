#!/usr/bin/env node
// The test command (`npm test`): the build (tsc, once: it is also the type check), the other
// lint checks (scripts/lint.mjs: Biome, layering, flake8), node's test runner over each compiled
// unit and integration test file, and the probe's Python tests, one module at a time. Files run
// side by side in REPRO_TEST_JOBS lanes (default: cores + 1; the integration tests wait on
// engines and pythons as much as they compute), longest first by the last run's times; a file
// listed in ALONE runs when nothing else does, zz-* files last. Each test's line is printed as
// it finishes. At the end: every file's wall time, the 20 slowest tests, and one plain
// `N passed, N failed` line for everything.
//
// Switches (environment):
//   REPRO_TEST_JOBS=N         lanes (1 = one file at a time, as before)
//   REPRO_TEST_ORDER=reverse  files in the opposite order (shows no test depends on an earlier one)
//   REPRO_TEST_CPU=avx2       act as a host without AVX-512: every probe process (host pythons and
//                             containers) gets ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2
//                             (REPRO_EMULATE_CPU, docs/testing.md), and tests that ask for the
//                             host's CPU flags see them without avx512*
//   REPRO_TEST_ONLY=a,b       only the files whose path contains one of these words
//   REPRO_TEST_PYTHON         the python for the probe's tests (default /usr/bin/python3)

import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const python = process.env.REPRO_TEST_PYTHON ?? '/usr/bin/python3'
const jobs = Math.max(1, Number(process.env.REPRO_TEST_JOBS) || os.availableParallelism() + 1)
const only = (process.env.REPRO_TEST_ONLY ?? '').split(',').filter(Boolean)
const TIMES = 'node_modules/.cache/repro-test-times.json'
// Files that look at engine-wide state while they run (a container they leave on purpose must
// not be swept by another file's repro): they run with no other file beside them.
const ALONE = new Set(['integration/engine-trouble'])
const suiteStart = new Date()

// The suite-wide run cache the tests about reports and verdicts share (test/integration/helpers.ts
// SHARED_CACHE, docs/testing.md): one per test run, removed at the end.
const sharedCache = mkdtempSync(path.join(os.tmpdir(), 'repro-test-cache-'))
const env = {...process.env, REPRO_TEST_SUITE_START: suiteStart.toISOString(), REPRO_TEST_SHARED_CACHE: sharedCache}
if (process.env.REPRO_TEST_CPU) {
  if (process.env.REPRO_TEST_CPU !== 'avx2') {
    console.error(`run-tests: REPRO_TEST_CPU=${process.env.REPRO_TEST_CPU}: the only value is avx2`)
    process.exit(2)
  }
  env.REPRO_EMULATE_CPU = 'avx2'
}

/** @typedef {{name: string, kind: 'lint'|'node'|'python', cmd: string, args: string[], cwd?: string}} Job */

const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`
const clock = () => seconds(Date.now() - suiteStart.getTime())

/** Run one job, streaming its lines with its name in front; resolves with its output and time. */
function runJob(job) {
  return new Promise((resolve) => {
    const started = Date.now()
    const child = spawn(job.cmd, job.args, {cwd: job.cwd ?? process.cwd(), env, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let pending = ''
    const onData = (d) => {
      const text = d.toString()
      out += text
      pending += text
      const lines = pending.split('\n')
      pending = lines.pop()
      for (const line of lines) if (!line.startsWith('##repro-tests ')) process.stdout.write(`[${job.name}] ${line}\n`)
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('error', (e) => {
      out += `\n${e.message}\n`
    })
    child.on('close', (code, signal) => {
      if (pending) process.stdout.write(`[${job.name}] ${pending}\n`)
      resolve({job, code, signal, out, ms: Date.now() - started})
    })
  })
}

/** The counts and per-test times a job printed (its `##repro-tests` line), or one failure. */
function parse(result) {
  const {job, code, out} = result
  if (job.kind === 'lint') {
    const m = /^lint: (\d+) passed, (\d+) failed$/m.exec(out)
    const counts = {pass: Number(m?.[1] ?? 0), fail: m ? Number(m[2]) : 1, skipped: 0}
    if (code !== 0 && counts.fail === 0) counts.fail = 1
    return {counts, tests: []}
  }
  const line = out.split('\n').find((l) => l.startsWith('##repro-tests '))
  const data = line ? JSON.parse(line.slice('##repro-tests '.length)) : {counts: {pass: 0, fail: 0, skipped: 0}, tests: []}
  const counts = {
    pass: data.counts.pass,
    fail: data.counts.fail + (data.counts.cancelled ?? 0),
    skipped: data.counts.skipped + (data.counts.todo ?? 0),
  }
  // a file that crashed, or exited non-zero with nothing failed, is one failure
  if ((code !== 0 || !line) && counts.fail === 0) counts.fail = 1
  return {counts, tests: data.tests}
}

// Build first: tsc here is the type check too (lint.mjs skips its own with --no-types).
const build = await runJob({name: 'build', kind: 'lint', cmd: 'npm', args: ['run', '--silent', 'build']})
const results = [{...build, parsed: {counts: {pass: build.code === 0 ? 1 : 0, fail: build.code === 0 ? 0 : 1, skipped: 0}, tests: []}}]
process.stdout.write(`[build] ${build.code === 0 ? '✔' : '✖'} types + build (tsc) (${seconds(build.ms)})\n`)

const testFiles = (dir) =>
  existsSync(dir)
    ? readdirSync(dir, {recursive: true})
        .filter((f) => f.endsWith('.test.js'))
        .sort()
        .map((f) => path.join(dir, f))
    : []

/** @type {Job[]} */
let queue = []
if (build.code === 0) {
  queue.push({name: 'lint', kind: 'lint', cmd: process.execPath, args: ['scripts/lint.mjs', '--summary', '--no-types']})
  for (const f of [...testFiles('dist/test/unit'), ...testFiles('dist/test/integration')]) {
    const name = path.relative('dist/test', f).replace(/\.test\.js$/, '')
    queue.push({
      name,
      kind: 'node',
      cmd: process.execPath,
      args: ['--test', '--test-reporter=./scripts/test-reporter.mjs', '--test-reporter-destination=stdout', f],
    })
  }
  for (const f of readdirSync('probe/tests')
    .filter((f) => /^test_.*\.py$/.test(f))
    .sort())
    queue.push({
      name: `probe/${f.replace(/\.py$/, '')}`,
      kind: 'python',
      cmd: python,
      args: ['-u', '../scripts/unittest-timed.py', f],
      cwd: 'probe',
    })
}
if (only.length) queue = queue.filter((j) => j.kind === 'lint' || only.some((w) => j.name.includes(w)))

// Order: longest first by the last run's times on this machine, or, in a fresh clone, by the
// seconds in scripts/test-times.json (measured on a 2-core machine; refresh it when the order
// goes stale); files timed nowhere first, in name order.
// REPRO_TEST_ORDER=reverse turns the order round. zz-* files wait for everything else.
const committed = Object.fromEntries(
  Object.entries(JSON.parse(readFileSync('scripts/test-times.json', 'utf8'))).map(([k, v]) => [k, v * 1000]),
)
const lastTimes = existsSync(TIMES) ? JSON.parse(readFileSync(TIMES, 'utf8')) : committed
queue.sort((a, b) => (lastTimes[b.name] ?? Infinity) - (lastTimes[a.name] ?? Infinity) || a.name.localeCompare(b.name))
if (process.env.REPRO_TEST_ORDER === 'reverse') queue.reverse()
const last = queue.filter((j) => path.basename(j.name).startsWith('zz-'))
queue = queue.filter((j) => !last.includes(j))

process.stdout.write(
  `run-tests: ${queue.length + last.length} files in ${jobs} lane(s)${env.REPRO_EMULATE_CPU ? ', acting as an AVX2 host' : ''}\n`,
)

/** Run `list` in `jobs` lanes; an ALONE file starts only when the lanes are empty, and holds them. */
async function runAll(list) {
  const running = new Set()
  let alone = false
  const pending = [...list]
  await new Promise((resolve) => {
    const next = () => {
      if (pending.length === 0 && running.size === 0) return resolve()
      while (pending.length && !alone && running.size < jobs) {
        const i = pending.findIndex((j) => !ALONE.has(j.name) || running.size === 0)
        if (i < 0) break
        const [job] = pending.splice(i, 1)
        if (ALONE.has(job.name)) alone = true
        process.stdout.write(`run-tests: ${clock()} start ${job.name}\n`)
        const p = runJob(job).then((r) => {
          running.delete(p)
          if (ALONE.has(job.name)) alone = false
          const parsed = parse(r)
          results.push({...r, parsed})
          const c = parsed.counts
          process.stdout.write(
            `run-tests: ${clock()} done ${job.name} in ${seconds(r.ms)}: ${c.pass} passed, ${c.fail} failed${c.skipped ? `, ${c.skipped} skipped` : ''}\n`,
          )
          next()
        })
        running.add(p)
      }
    }
    next()
  })
}
await runAll(queue)
await runAll(last)

rmSync(sharedCache, {recursive: true, force: true})

// Times for the next run's order.
mkdirSync(path.dirname(TIMES), {recursive: true})
writeFileSync(TIMES, JSON.stringify({...lastTimes, ...Object.fromEntries(results.map((r) => [r.job.name, r.ms]))}, null, 1))

const total = {pass: 0, fail: 0, skipped: 0}
const byKind = {node: {pass: 0, fail: 0}, python: {pass: 0, fail: 0}, lint: {pass: 0, fail: 0}}
for (const r of results) {
  for (const k of Object.keys(total)) total[k] += r.parsed.counts[k]
  byKind[r.job.kind].pass += r.parsed.counts.pass
  byKind[r.job.kind].fail += r.parsed.counts.fail
}

const pad = (s, n) => String(s).padEnd(n)
const wall = Date.now() - suiteStart.getTime()
const lines = ['', `== wall time per file (${jobs} lane(s); ${seconds(wall)} in all, build included)`]
const width = Math.max(...results.map((r) => r.job.name.length))
for (const r of [...results].sort((a, b) => b.ms - a.ms)) {
  const c = r.parsed.counts
  lines.push(
    `${pad(r.job.name, width)}  ${seconds(r.ms).padStart(8)}  ${c.pass} passed${c.fail ? `, ${c.fail} FAILED` : ''}${c.skipped ? `, ${c.skipped} skipped` : ''}`,
  )
}
const slowest = results
  .flatMap((r) => r.parsed.tests.map((t) => ({...t, file: r.job.name})))
  .sort((a, b) => b.ms - a.ms)
  .slice(0, 20)
lines.push('', '== the 20 slowest tests')
for (const t of slowest) lines.push(`${seconds(t.ms).padStart(8)}  ${t.file} › ${t.name}`)
const failedFiles = results.filter((r) => r.parsed.counts.fail > 0).map((r) => r.job.name)
if (failedFiles.length) lines.push('', `== files with failures: ${failedFiles.join(', ')}`)
if (process.env.REPRO_CI_SETUP_SECONDS)
  lines.push(
    '',
    `ci: set-up ${process.env.REPRO_CI_SETUP_SECONDS} s (bootstrap.sh --full), tests ${(wall / 1000).toFixed(0)} s, total ${Number(process.env.REPRO_CI_SETUP_SECONDS) + Math.round(wall / 1000)} s`,
  )
lines.push(
  '',
  `lint: ${byKind.lint.pass} passed, ${byKind.lint.fail} failed · node: ${byKind.node.pass} passed, ${byKind.node.fail} failed · probe (python): ${byKind.python.pass} passed, ${byKind.python.fail} failed`,
  `${total.pass} passed, ${total.fail} failed, ${total.skipped} skipped`,
)
console.log(lines.join('\n'))
process.exit(total.fail === 0 ? 0 : 1)
