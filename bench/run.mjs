#!/usr/bin/env node
// `npm run bench`: repro's benchmarks. Every benchmark is a ratio of two things measured in the
// same run (medians of N repetitions, A and B interleaved so drift on the machine hits both),
// printed to stdout and written to bench/results.md. Progress goes to stderr. A measured command
// that fails stops the bench with a non-zero exit; a benchmark whose prerequisite is missing
// (docker image, `repro check`) is skipped with its reason.
//
// Environment:
//   BENCH_QUICK=1      one repetition each, smaller arrays (smoke run); results.md is not
//                      overwritten unless BENCH_OUT is set
//   BENCH_ONLY=1,3     run only these benchmarks (1 audit/python, 2 audit/docker, 3 compare,
//                      4 probe instrumentation, 5 cached check, 6 instrumentation per
//                      workload, 7 the tracer on examples/ml-repo's script, 8 --workload all
//                      on two images, 9 compare scaling 10^4…10^8 elements, 10 audit scaling
//                      2/4/8 targets × --jobs 1/2); `npm run bench -- --only 5` (or --only=1,3)
//                      says the same.
//                      A run of some benchmarks prints its table but writes bench/results.md only
//                      when BENCH_OUT names it (its partial table would replace the full one)
//   BENCH_OUT=FILE     where the Markdown goes (default bench/results.md)
//   BENCH_PYTHON       interpreter with torch (default /usr/bin/python3)
//   BENCH_IMAGE        image for benchmark 2 (default repro-fixture:trixie)
//   BENCH_CHECK_BASELINE=DIR  another built checkout (e.g. main's): bench 5b measures its warm
//                      `repro check` beside this build's, interleaved, with both breakdowns
//
// Needs a built dist/ (the npm script runs tsc first).

import {spawnSync} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const QUICK = process.env.BENCH_QUICK === '1'
/** --only 5, --only=1,3 (npm run bench -- --only 5), else BENCH_ONLY. */
function onlyArg(argv) {
  const i = argv.findIndex((a) => a === '--only' || a.startsWith('--only='))
  if (i < 0) return process.env.BENCH_ONLY ?? null
  const v = argv[i] === '--only' ? argv[i + 1] : argv[i].slice('--only='.length)
  if (!v || !/^\d+(,\d+)*$/.test(v.replace(/\s/g, ''))) {
    process.stderr.write('bench: --only takes benchmark numbers, e.g. --only 5 or --only 1,3\n')
    process.exit(2)
  }
  return v
}
const ONLY_LIST = onlyArg(process.argv.slice(2))
const ONLY = ONLY_LIST ? new Set(ONLY_LIST.split(',').map((s) => s.trim())) : null
const PY = process.env.BENCH_PYTHON ?? '/usr/bin/python3'
const IMAGE = process.env.BENCH_IMAGE ?? 'repro-fixture:trixie'
const OUT_MD = process.env.BENCH_OUT ? path.resolve(process.env.BENCH_OUT) : QUICK || ONLY ? null : path.join(ROOT, 'bench', 'results.md')
const REPRO = path.join(ROOT, 'bin', 'run.js')
const PROBE = path.join(ROOT, 'probe')

// Repetitions: sized so the full bench stays around 5 minutes on 2 cores.
const CFG = QUICK
  ? {localR: 2, localN: 1, dockerR: 1, dockerN: 1, elems: 4 << 20, cmpReps: 2, probeN: 1, checkN: 1, checkWarmN: 2}
  : {localR: 3, localN: 6, dockerR: 2, dockerN: 4, elems: 16 << 20, cmpReps: 7, probeN: 7, checkN: 3, checkWarmN: 11}

const t0 = Date.now()
function log(msg) {
  process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`)
}

class BenchError extends Error {}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'repro-bench-'))
const REPRO_ENV = {...process.env, REPRO_CACHE_DIR: path.join(tmp, 'repro-cache')}
function cleanup() {
  rmSync(tmp, {recursive: true, force: true})
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup()
    process.stderr.write(`bench: interrupted (${sig})\n`)
    process.exit(130)
  })
}

function tail(s, n = 2000) {
  s = s ?? ''
  return s.length > n ? `…${s.slice(-n)}` : s
}

// CPU time (user + sys of the command and every descendant it waited for) and peak RSS (the
// largest of the command and its descendants) through GNU time, when present: on a shared
// machine CPU time is far less noisy than wall time. Containers' CPU time is not a descendant of
// the docker CLI, so it is only reported for local runs.
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null
let timeFileSeq = 0

/**
 * Runs a command to completion, timing its wall clock (and CPU time and peak RSS in KiB with
 * `cpu: true`); throws unless its exit code is in `ok`.
 */
function run(cmd, args, {env, cwd = ROOT, ok = [0], what, cpu = false} = {}) {
  const timeFile = cpu && GNU_TIME ? path.join(tmp, `time-${timeFileSeq++}.txt`) : null
  const [file, argv] = timeFile ? [GNU_TIME, ['-o', timeFile, '-f', '%U %S %M', cmd, ...args]] : [cmd, args]
  const start = process.hrtime.bigint()
  const r = spawnSync(file, argv, {
    cwd,
    env: env ?? process.env,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  if (r.error || !ok.includes(r.status)) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`
    throw new BenchError(
      `${what ?? cmd} failed (${why}): ${cmd} ${args.join(' ')}\n--- stdout ---\n${tail(r.stdout)}\n--- stderr ---\n${tail(r.stderr)}`,
    )
  }
  let cpuSeconds = null
  let maxRssKiB = null
  if (timeFile) {
    const m = /^([\d.]+) ([\d.]+) (\d+)\s*$/m.exec(readFileSync(timeFile, 'utf8'))
    if (!m) throw new BenchError(`${what ?? cmd}: cannot read CPU time from ${GNU_TIME}`)
    cpuSeconds = Number(m[1]) + Number(m[2])
    maxRssKiB = Number(m[3])
    rmSync(timeFile, {force: true})
  }
  return {seconds, cpuSeconds, maxRssKiB, status: r.status, stdout: r.stdout, stderr: r.stderr}
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}
function range(xs) {
  return `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`
}
function secs(xs) {
  return xs.length > 1 ? `${median(xs).toFixed(2)} s (${range(xs)})` : `${median(xs).toFixed(2)} s`
}
/** Median of the per-repetition ratios A_i / B_i (A_i and B_i ran back to back). */
function pairedRatio(as, bs) {
  return median(as.map((a, i) => a / bs[i]))
}
function pairedDiff(as, bs) {
  return median(as.map((a, i) => a - bs[i]))
}
function readJson(p) {
  return JSON.parse(readFileSync(p, 'utf8'))
}

const rows = []
function row(bench, what, a, b, ratio, reps) {
  rows.push({bench, what, a, b, ratio, reps})
  log(`${bench}: ${typeof ratio === 'number' ? `ratio ${ratio.toFixed(3)}` : ratio}`)
}
function skip(bench, what, reason) {
  process.stderr.write(`bench: ${bench}: skipped — ${reason}\n`)
  rows.push({bench, what, a: '—', b: '—', ratio: `skipped: ${reason}`, reps: '—'})
}
const wanted = (id) => !ONLY || ONLY.has(String(id))

// repro's run cache would turn the measured audits into copies of the warm-up's runs: every
// measured audit passes --no-cache (when this build has the flag), and the cache lives in the
// temp dir anyway, so the user's cache is never read or filled.
let noCacheFlag = null
function noCache() {
  if (noCacheFlag === null) {
    const help = run(process.execPath, [REPRO, 'audit', '--help'], {env: REPRO_ENV, what: 'repro audit --help'}).stdout
    noCacheFlag = /--\[no-\]cache\b/.test(help) ? ['--no-cache'] : []
    log(noCacheFlag.length ? 'audits run with --no-cache' : 'this build has no run cache flag')
  }
  return noCacheFlag
}

function auditArgs(target, repeats, out, extra = []) {
  return [REPRO, 'audit', ...target, '--repeats', String(repeats), '--no-explain', ...noCache(), '--format', 'json', '--out', out, ...extra]
}

/** Audit exit 0 = reproducible, 1 = drift (still a complete, timed run); anything else fails. */
function timedAudit(target, repeats, out, what, {cpu = false, extra = []} = {}) {
  const r = run(process.execPath, auditArgs(target, repeats, out, extra), {env: REPRO_ENV, ok: [0, 1], what, cpu})
  if (r.status === 1) log(`warning: ${what} reported drift (exit 1); timing kept`)
  const report = readJson(path.join(out, 'report.json'))
  for (const t of report.targets ?? []) {
    if (t.status !== 'ok') throw new BenchError(`${what}: target ${t.name} failed: ${t.error?.line ?? t.status}`)
    for (const rr of t.runs ?? []) {
      if (rr.cached) throw new BenchError(`${what}: run r${rr.repeat} came from the run cache, so nothing was measured`)
    }
  }
  let probeSeconds = 0
  for (let k = 1; k <= repeats; k++) {
    const rj = readJson(path.join(out, `t1-r${k}`, 'run.json'))
    if (rj.status !== 'ok') throw new BenchError(`${what}: run t1-r${k} has status ${rj.status}`)
    probeSeconds += rj.timings.total_seconds
  }
  return {...r, probeSeconds}
}

/** Inputs (config.json + data.safetensors) as repro writes them, from an untimed warm-up audit. */
const inputsCache = new Map()
function prepareInputs(key, target) {
  if (inputsCache.has(key)) return inputsCache.get(key)
  const out = path.join(tmp, `warm-${key}`)
  log(`warm-up audit (${key}), untimed: takes the probe inputs from its run directory`)
  timedAudit(target, 1, out, `warm-up audit (${key})`)
  const inputs = path.join(tmp, `inputs-${key}`)
  cpSync(path.join(out, 't1-r1', 'inputs'), inputs, {recursive: true})
  for (const f of ['config.json', 'data.safetensors']) {
    if (!existsSync(path.join(inputs, f))) throw new BenchError(`warm-up audit (${key}) wrote no inputs/${f}`)
  }
  const info = {inputs, fingerprint: readJson(path.join(out, 't1-r1', 'fingerprint.json'))}
  rmSync(out, {recursive: true, force: true})
  inputsCache.set(key, info)
  return info
}

/** Checks the plain runs' status; returns the sum of the probe's own `timings.total_seconds`. */
function checkPlainRuns(out, repeats, what) {
  let probeSeconds = 0
  for (let k = 1; k <= repeats; k++) {
    const rj = readJson(path.join(out, `r${k}`, 'run.json'))
    if (rj.status !== 'ok') throw new BenchError(`${what}: r${k} has status ${rj.status}`)
    probeSeconds += rj.timings.total_seconds
  }
  return probeSeconds
}

/**
 * Wall time outside the probe: the command's wall time minus the probe's own
 * `timings.total_seconds` of every run. Training time on a loaded 2-core machine varies by
 * seconds from run to run (torch's OpenMP threads compete with everything else), and this
 * cancels it, leaving what the wrapper — repro or the shell loop — costs around the probe.
 */
function outside(xs) {
  return xs.map((x) => x.seconds - x.probeSeconds)
}

/** Measures A and B n times, alternating which goes first. */
function interleaved(n, label, a, b) {
  const as = []
  const bs = []
  for (let i = 0; i < n; i++) {
    log(`${label}: repetition ${i + 1}/${n}`)
    if (i % 2 === 0) {
      as.push(a(i))
      bs.push(b(i))
    } else {
      bs.push(b(i))
      as.push(a(i))
    }
  }
  return [as, bs]
}

// ---------------------------------------------------------------------------------------------
// 1. Audit overhead, local python

function benchAuditPython() {
  const {localR: R, localN: N} = CFG
  const {inputs} = prepareInputs('python', ['--python', PY])
  const loop = 'set -e; for k in $(seq 1 "$R"); do PYTHONPATH="$PROBE" "$PY" -m repro_probe train --config "$CONFIG" --out "$OUT/r$k"; done'
  const [repro, plain] = interleaved(
    N,
    '1 audit/python',
    (i) => {
      const out = path.join(tmp, `b1-audit-${i}`)
      const r = timedAudit(['--python', PY], R, out, 'repro audit --python', {cpu: true})
      rmSync(out, {recursive: true, force: true})
      return r
    },
    (i) => {
      const out = path.join(tmp, `b1-plain-${i}`)
      const env = {...process.env, R: String(R), PROBE, PY, CONFIG: path.join(inputs, 'config.json'), OUT: out}
      const r = run('bash', ['-c', loop], {env, what: 'plain python loop', cpu: true})
      const probeSeconds = checkPlainRuns(out, R, 'plain python loop')
      rmSync(out, {recursive: true, force: true})
      return {...r, probeSeconds}
    },
  )
  const cmd = `\`repro audit --python ${PY} --repeats ${R} --no-explain ${noCache().join(' ')} --format json\``
  const wall = (xs) => xs.map((x) => x.seconds)
  row(
    '1. audit overhead, local python',
    `${cmd} (A) vs a shell loop of the same ${R} \`python -m repro_probe train\` runs (B), wall time; median A − B ${pairedDiff(wall(repro), wall(plain)).toFixed(2)} s`,
    secs(wall(repro)),
    secs(wall(plain)),
    pairedRatio(wall(repro), wall(plain)),
    `${N} × (${R} probe runs each)`,
  )
  if (repro[0].cpuSeconds !== null) {
    const cpu = (xs) => xs.map((x) => x.cpuSeconds)
    row(
      '1b. audit overhead, local python, CPU time',
      `same runs, user + sys CPU time of the command and its descendants (GNU time); median A − B ${pairedDiff(cpu(repro), cpu(plain)).toFixed(2)} s`,
      secs(cpu(repro)),
      secs(cpu(plain)),
      pairedRatio(cpu(repro), cpu(plain)),
      `${N} × (${R} probe runs each)`,
    )
  }
  row(
    '1c. audit overhead, local python, outside the probe',
    `same runs, wall time minus the probe's own \`timings.total_seconds\` of each run (python start-up and exit, node, spawning, reading/comparing/writing artifacts); median A − B ${pairedDiff(outside(repro), outside(plain)).toFixed(2)} s`,
    secs(outside(repro)),
    secs(outside(plain)),
    pairedRatio(outside(repro), outside(plain)),
    `${N} × (${R} probe runs each)`,
  )
}

// ---------------------------------------------------------------------------------------------
// 2. Audit overhead, docker

function dockerImageOk(image) {
  const r = spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', image], {encoding: 'utf8'})
  return r.error || r.status !== 0 ? `docker or image ${image} not available (${r.error?.message ?? tail(r.stderr, 200).trim()})` : null
}

function benchAuditDocker() {
  const bench = '2. audit overhead, docker'
  const missing = dockerImageOk(IMAGE)
  if (missing) return skip(bench, `\`repro audit --image ${IMAGE}\` vs a shell loop of \`docker run --rm\``, missing)
  const {dockerR: R, dockerN: N} = CFG
  const {inputs} = prepareInputs('docker', ['--image', IMAGE])
  const loop =
    'set -e; for k in $(seq 1 "$R"); do mkdir -p "$OUT/r$k"; docker run --rm --network none -v "$PROBE":/repro/probe:ro -v "$IN":/repro/in:ro -v "$OUT/r$k":/repro/out ' +
    '-e PYTHONPATH=/repro/probe --entrypoint python3 "$IMAGE" -m repro_probe train --config /repro/in/config.json --out /repro/out; done'
  const wall = (xs) => xs.map((x) => x.seconds)
  const [repro, plain] = interleaved(
    N,
    '2 audit/docker',
    (i) => {
      const out = path.join(tmp, `b2-audit-${i}`)
      const r = timedAudit(['--image', IMAGE], R, out, 'repro audit --image')
      rmSync(out, {recursive: true, force: true})
      return r
    },
    (i) => {
      const out = path.join(tmp, `b2-plain-${i}`)
      const env = {...process.env, R: String(R), PROBE, IN: inputs, OUT: out, IMAGE}
      const r = run('bash', ['-c', loop], {env, what: 'plain docker loop'})
      const probeSeconds = checkPlainRuns(out, R, 'plain docker loop')
      rmSync(out, {recursive: true, force: true})
      return {...r, probeSeconds}
    },
  )
  row(
    bench,
    `\`repro audit --image ${IMAGE} --repeats ${R} --no-explain ${noCache().join(' ')} --format json\` (A) vs a shell loop of ${R} \`docker run --rm --network none -v …\` probe runs with bind mounts (B), wall time; median A − B ${pairedDiff(wall(repro), wall(plain)).toFixed(2)} s`,
    secs(wall(repro)),
    secs(wall(plain)),
    pairedRatio(wall(repro), wall(plain)),
    `${N} × (${R} probe runs each)`,
  )
  row(
    '2b. audit overhead, docker, outside the probe',
    `same runs, wall time minus the probe's own \`timings.total_seconds\` of each run (container start/exit, node, repro's cp/status/cp per run in one container per target, created/started/removed once, vs one \`docker run --rm\` per run); median A − B ${pairedDiff(outside(repro), outside(plain)).toFixed(2)} s`,
    secs(outside(repro)),
    secs(outside(plain)),
    pairedRatio(outside(repro), outside(plain)),
    `${N} × (${R} probe runs each)`,
  )
}

// ---------------------------------------------------------------------------------------------
// 3. Compare throughput

/** Two float32 arrays: a ~ N(0,1); b = a moved by -4..+4 ULP, and every 1000th by 1e-4 (a mismatch). */
function writeArrays(file, n) {
  let s = 0x9e3779b9 >>> 0
  const rand = () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  // both arrays live in the one buffer that is written (10^8 elements: 800 MB, not twice that)
  const buf = Buffer.alloc(8 * n)
  const a = new Float32Array(buf.buffer, buf.byteOffset, n)
  const b = new Float32Array(buf.buffer, buf.byteOffset + 4 * n, n)
  for (let i = 0; i < n; i += 2) {
    const u = 1 - rand()
    const v = rand()
    const r = Math.sqrt(-2 * Math.log(u))
    a[i] = r * Math.cos(2 * Math.PI * v)
    if (i + 1 < n) a[i + 1] = r * Math.sin(2 * Math.PI * v)
  }
  b.set(a)
  const bi = new Int32Array(buf.buffer, buf.byteOffset + 4 * n, n)
  for (let i = 0; i < n; i++) {
    if (i % 1000 === 999) b[i] = a[i] + (a[i] < 0 ? -1e-4 : 1e-4)
    else if (a[i] !== 0) bi[i] += Math.floor(rand() * 9) - 4
  }
  writeFileSync(file, buf)
}

/** Both sides must have computed the same thing, or the timing means nothing (numpy's `metrics` may hold the mismatch count alone). */
function checkSameMetrics(ts, np) {
  const m = ts.metrics
  const q = np.metrics
  const close = (x, y, rel) => Math.abs(x - y) <= rel * Math.max(Math.abs(x), Math.abs(y))
  if (
    m.mismatches !== q.mismatches ||
    m.within_tolerance !== np.allclose ||
    (q.max_abs !== undefined && !close(m.max_abs, q.max_abs, 1e-6)) ||
    (q.rel_l2 !== undefined && !close(m.rel_l2, q.rel_l2, 1e-6)) ||
    (q.cosine !== undefined && Math.abs(m.cosine - q.cosine) > 1e-9)
  ) {
    throw new BenchError(`TS and numpy disagree on the metrics:\nTS    ${JSON.stringify(m)}\nnumpy ${JSON.stringify(q)}`)
  }
}

function benchCompare() {
  const n = CFG.elems
  const reps = CFG.cmpReps
  const file = path.join(tmp, 'arrays.f32')
  log(`3 compare: writing 2 × ${n} float32 (${(4 * n) / 2 ** 20} MiB each)`)
  writeArrays(file, n)
  log(`3 compare: TS compareValues, ${reps} reps (+1 warm-up)`)
  const ts = JSON.parse(
    run(process.execPath, [path.join(ROOT, 'bench', 'compare-ts.mjs'), file, String(n), String(reps)], {what: 'TS compare'}).stdout,
  )
  log(`3 compare: numpy allclose and full metrics, ${reps} reps each (+1 warm-up)`)
  const np = JSON.parse(run(PY, [path.join(ROOT, 'bench', 'compare_np.py'), file, String(n), String(reps)], {what: 'numpy compare'}).stdout)
  checkSameMetrics(ts, np)
  const m = ts.metrics
  rmSync(file, {force: true})
  const bytes = 8 * n // both inputs
  const gbps = (s) => bytes / s / 1e9
  const fmt = (xs) => `${gbps(median(xs)).toFixed(2)} GB/s (${(median(xs) * 1000).toFixed(0)} ms)`
  const mib = (4 * n) / 2 ** 20
  const data = `2 × float32[${n}] (${mib} MiB each), every element 0–4 ULP apart, 0.1 % beyond tolerance (${m.mismatches} mismatches)`
  row(
    '3a. compare throughput vs allclose',
    `TS \`compareValues\` full metrics pass (A) vs numpy ${np.numpy} \`np.allclose(a, b, rtol=1.3e-6, atol=1e-5)\` (B); ${data}; GB/s of both inputs`,
    fmt(ts.seconds),
    fmt(np.allclose_seconds),
    gbps(median(ts.seconds)) / gbps(median(np.allclose_seconds)),
    `${reps} (+1 warm-up) each`,
  )
  row(
    '3b. compare throughput, comparable metrics',
    `same TS pass (A) vs numpy computing the comparable set — mismatch count (isclose), max abs, max rel, relative L2, cosine, norms in float64 (B); TS also computes max/p99 ULP and NaN/Inf/−0 counts`,
    fmt(ts.seconds),
    fmt(np.full_seconds),
    gbps(median(ts.seconds)) / gbps(median(np.full_seconds)),
    `${reps} (+1 warm-up) each`,
  )
}

// ---------------------------------------------------------------------------------------------
// 4. Probe instrumentation cost

function benchProbe() {
  const N = CFG.probeN
  const {inputs} = prepareInputs('python', ['--python', PY])
  const dir = path.join(tmp, 'b4-inputs')
  mkdirSync(dir)
  cpSync(path.join(inputs, 'data.safetensors'), path.join(dir, 'data.safetensors'))
  const base = readJson(path.join(inputs, 'config.json'))
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({...base, trace: {...base.trace, store_steps: null}}, null, 2))
  const [on, off] = traceOnOff('4 probe', 'train', dir, N)
  const pick = (xs, k) => xs.map((x) => x[k])
  const steps = on[0].steps
  row(
    '4a. probe instrumentation, training only',
    `\`timings.train_seconds\` with the full trace (\`trace.enabled: true\`, default store steps) (A) vs \`trace.enabled: false\` (B), same config, ${steps} steps; recorder's own \`trace_seconds\` median ${median(pick(on, 'trace')).toFixed(2)} s`,
    secs(pick(on, 'train')),
    secs(pick(off, 'train')),
    pairedRatio(pick(on, 'train'), pick(off, 'train')),
    `${N} each, interleaved`,
  )
  row(
    '4b. probe instrumentation, end to end',
    `process wall time of \`${PY} -m repro_probe train\`, trace on (A) vs off (B), incl. torch import and writing the artifacts`,
    secs(pick(on, 'wall')),
    secs(pick(off, 'wall')),
    pairedRatio(pick(on, 'wall'), pick(off, 'wall')),
    `${N} each, interleaved`,
  )
}

// ---------------------------------------------------------------------------------------------
// 5. Cached `repro check`

/** Copies examples/ml-repo to a temp dir and records its baseline there (untimed). */
function prepareMlRepo() {
  const repo = path.join(tmp, 'ml-repo')
  cpSync(path.join(ROOT, 'examples', 'ml-repo'), repo, {recursive: true})
  log('5 check: recording the baseline in a temp copy of examples/ml-repo (untimed)')
  const env = {...process.env, REPRO_CACHE_DIR: path.join(tmp, 'check-cache-baseline')}
  run(process.execPath, [REPRO, 'check', '--update-baseline', '--out', 'reports/c0'], {
    cwd: repo,
    env,
    what: 'repro check --update-baseline',
  })
  return repo
}

function timedCheck(repo, cacheDir, out, expectCached, what, bin = REPRO, extraEnv = {}) {
  const env = {...process.env, REPRO_CACHE_DIR: cacheDir, ...extraEnv}
  const r = run(process.execPath, [bin, 'check', '--out', out], {cwd: repo, env, ok: [0, 1], what, cpu: true})
  if (r.status === 1) log(`warning: ${what} is beyond policy (exit 1); timing kept`)
  const check = readJson(path.join(repo, out, 'check.json'))
  const runs = (check.audit?.targets ?? []).flatMap((t) => t.runs ?? [])
  if (runs.length === 0) throw new BenchError(`${what}: check.json lists no runs`)
  if (!runs.every((x) => Boolean(x.cached) === expectCached))
    throw new BenchError(
      `${what}: expected every run ${expectCached ? 'cached' : 'fresh'}, got ${JSON.stringify(runs.map((x) => Boolean(x.cached)))}`,
    )
  rmSync(path.join(repo, out), {recursive: true, force: true})
  return {seconds: r.seconds, cpuSeconds: r.cpuSeconds, runs: runs.length, stderr: r.stderr}
}

/**
 * The REPRO_TIMINGS=1 table a check prints on stderr (src/env/timings.ts) as phase → wall ms,
 * with module loading also split into @oclif/core and the rest; null when the build has none.
 */
function parseTimings(stderr) {
  const at = stderr.indexOf('repro timings')
  if (at < 0) return null
  const phases = new Map()
  for (const line of stderr.slice(at).split('\n').slice(1)) {
    const m = /^ {2}(\S.*?) {2,}(\d*) +(\d+)(?: +\d+ +\d+)? *$/.exec(line)
    if (m) {
      phases.set(m[1], Number(m[3]))
      continue
    }
    // the first part of module loading: @oclif/core (builds before the bundle) or the bundle
    const d = /^ {2}module loading: (?:@oclif\/core|the bundle \(@oclif\/core and the commands\)) (\d+)/.exec(line)
    if (d) phases.set('of which @oclif/core (or the bundle)', Number(d[1]))
  }
  // the split right after the phase it splits
  const first = 'of which @oclif/core (or the bundle)'
  const ms = phases.get(first)
  if (ms === undefined) return phases
  phases.delete(first)
  return new Map([...phases].flatMap((e) => (e[0] === 'module loading' ? [e, [first, ms]] : [e])))
}

/** Median ms per phase over several tables (a phase missing from some counts as 0 there). */
function medianPhases(tables) {
  const names = []
  for (const t of tables) for (const k of t.keys()) if (!names.includes(k)) names.push(k)
  return new Map(names.map((k) => [k, median(tables.map((t) => t.get(k) ?? 0))]))
}

// BENCH_CHECK_BASELINE=DIR: another built checkout of repro (the baseline: `git archive main |
// tar -x -C DIR`, node_modules linked, `npm run build` there). Bench 5 then also measures that
// build's warm check, interleaved with this one's, each on its own run cache, and sets the
// two breakdowns side by side.
const CHECK_BASELINE = process.env.BENCH_CHECK_BASELINE ? path.resolve(process.env.BENCH_CHECK_BASELINE) : null
/** 5b's phases (median ms per build), written under the table */
let checkBreakdown = null

function benchCheck() {
  const bench = '5. cached `repro check`'
  const what = 'warm (cached) `repro check` (A) vs cold (B) in a temp copy of examples/ml-repo'
  const available =
    existsSync(path.join(ROOT, 'src', 'commands', 'check.ts')) && existsSync(path.join(ROOT, 'dist', 'src', 'commands', 'check.js'))
  if (!available) return skip(bench, what, 'repro check not available yet')
  if (!existsSync(path.join(ROOT, 'examples', 'ml-repo', 'repro.config.json'))) return skip(bench, what, 'examples/ml-repo not found')
  const cfg = readJson(path.join(ROOT, 'examples', 'ml-repo', 'repro.config.json'))
  for (const t of cfg.targets ?? []) {
    const missing = t.image ? dockerImageOk(t.image) : null
    if (missing) return skip(bench, what, missing)
  }
  const baseBin = CHECK_BASELINE ? path.join(CHECK_BASELINE, 'bin', 'run.js') : null
  if (baseBin && !existsSync(path.join(CHECK_BASELINE, 'dist', 'src', 'commands', 'check.js')))
    throw new BenchError(`BENCH_CHECK_BASELINE=${CHECK_BASELINE} has no built repro check (run npm run build there)`)
  const N = CFG.checkN
  const repo = prepareMlRepo()
  const warm = []
  const cold = []
  let runs = 0
  for (let i = 0; i < N; i++) {
    log(`5 check: repetition ${i + 1}/${N} (cold, then warm on the cache the cold one filled)`)
    const cache = path.join(tmp, `check-cache-${i}`)
    const c = timedCheck(repo, cache, `reports/cold-${i}`, false, 'cold repro check')
    cold.push(c.seconds)
    runs = c.runs
    warm.push(timedCheck(repo, cache, `reports/warm-${i}`, true, 'warm repro check').seconds)
    rmSync(cache, {recursive: true, force: true})
  }
  const targets = (cfg.targets ?? []).map((t) => t.image ?? t.python).join(', ')
  const setting = `in a temp copy of examples/ml-repo (${targets}, ${runs} probe runs, baseline file, no git)`
  row(
    bench,
    `\`repro check\` ${setting}: second run on the run cache the first filled (A) vs on an empty cache (B), wall time`,
    secs(warm),
    secs(cold),
    pairedRatio(warm, cold),
    `${N} pairs, fresh cache each`,
  )

  // 5b: this build's warm check against the baseline build's, interleaved, each on its own
  // cache (filled by one cold check of that build), then K more of each with REPRO_TIMINGS=1
  // (untimed from outside) for the breakdown
  const builds = [{name: 'this build', bin: REPRO}, ...(baseBin ? [{name: 'baseline', bin: baseBin}] : [])]
  for (const b of builds) {
    b.cache = path.join(tmp, `check-cache-warm-${b.name.replace(/\W/g, '')}`)
    timedCheck(repo, b.cache, 'reports/fill', false, `cold repro check (${b.name}, fills its cache)`, b.bin)
    b.wall = []
    b.cpu = []
    b.tables = []
  }
  const W = CFG.checkWarmN
  for (let i = 0; i < W; i++) {
    log(`5 check: warm repetition ${i + 1}/${W}${baseBin ? ' (this build and the baseline, alternating which goes first)' : ''}`)
    const order = i % 2 === 0 ? builds : [...builds].reverse()
    for (const b of order) {
      const r = timedCheck(repo, b.cache, `reports/w-${i}`, true, `warm repro check (${b.name})`, b.bin)
      b.wall.push(r.seconds)
      if (r.cpuSeconds !== null) b.cpu.push(r.cpuSeconds)
    }
    for (const b of order) {
      const t = parseTimings(
        timedCheck(repo, b.cache, `reports/t-${i}`, true, `warm check, REPRO_TIMINGS=1 (${b.name})`, b.bin, {REPRO_TIMINGS: '1'}).stderr,
      )
      if (t) b.tables.push(t)
    }
  }
  const [self, base] = builds
  const phases = builds.map((b) => (b.tables.length ? medianPhases(b.tables) : null))
  const names = []
  for (const p of phases) for (const k of p?.keys() ?? []) if (!names.includes(k) && !k.startsWith('total')) names.push(k)
  const fmt = (p, k) => (p?.has(k) ? String(Math.round(p.get(k))) : '–')
  const breakdown = names.map((k) => `${k.trim()} ${phases.map((p) => fmt(p, k)).join(' / ')}`).join(' · ')
  const totals = phases.map((p) => fmt(p, 'total (process start to now)')).join(' / ')
  log(`5 check: phases (ms${base ? ', this build / baseline' : ''}): ${breakdown} · total ${totals}`)
  // the breakdown goes under the table (a long cell would widen every row of it)
  checkBreakdown = {
    builds: builds.map((b) => (b === self ? 'this build (A)' : `baseline (B, ${path.basename(CHECK_BASELINE)})`)),
    rows: [...names, 'total (process start to now)'].map((k) => [k.startsWith('of which') ? `  ${k}` : k, ...phases.map((p) => fmt(p, k))]),
    runs: W,
  }
  row(
    '5b. warm `repro check`, where the time goes',
    `warm \`repro check\` ${setting}, ${base ? `this build (A) vs the baseline build BENCH_CHECK_BASELINE (B), interleaved, each on its own warm cache` : 'this build (A)'}, wall time; then ${W} more warm checks ${base ? 'of each ' : ''}with REPRO_TIMINGS=1: median ms per phase in the table below the machine line`,
    secs(self.wall),
    base ? secs(base.wall) : '—',
    base ? pairedRatio(self.wall, base.wall) : '—',
    `${W}${base ? ' pairs' : ''} + ${W} with timings${base ? ' each' : ''}`,
  )
  // CPU time (user + sys of node and the processes it waits for: the docker CLI, python) moves
  // far less with the load of a shared machine than wall time
  if (self.cpu.length === W && (!base || base.cpu.length === W))
    row(
      '5c. warm `repro check`, CPU time',
      `the same warm checks as 5b (without REPRO_TIMINGS), user + sys CPU time of the command and the processes it waited for (GNU time; not the docker daemon's)${base ? ': this build (A) vs the baseline build (B)' : ''}`,
      secs(self.cpu),
      base ? secs(base.cpu) : '—',
      base ? pairedRatio(self.cpu, base.cpu) : '—',
      `${W}${base ? ' pairs' : ''}`,
    )
  for (const b of builds) rmSync(b.cache, {recursive: true, force: true})
}

// ---------------------------------------------------------------------------------------------
// 6. Probe instrumentation per workload, 7. the tracer on the user's script (examples/ml-repo)

/** Each workload's probe inputs, from one untimed `repro audit --workload all` (run dirs t1-r1, t1-cnn-r1, …). */
function prepareWorkloadInputs() {
  const out = path.join(tmp, 'warm-workloads')
  log('6 workloads: warm-up audit of every workload, untimed: takes the probe inputs from its run directories')
  run(
    process.execPath,
    [REPRO, 'audit', '--python', PY, '--workload', 'all', '--repeats', '1', '--no-explain', '--no-cache', '--format', 'json', '--out', out],
    {
      env: REPRO_ENV,
      ok: [0, 1],
      what: 'warm-up audit (workloads)',
    },
  )
  const inputs = {}
  for (const w of ['mlp', 'cnn', 'lstm', 'attention']) {
    const dir = path.join(tmp, `inputs-${w}`)
    cpSync(path.join(out, w === 'mlp' ? 't1-r1' : `t1-${w}-r1`, 'inputs'), dir, {recursive: true})
    inputs[w] = dir
  }
  rmSync(out, {recursive: true, force: true})
  return inputs
}

/** Probe runs with the trace on (A) and off (B), interleaved; `cwd` holds config.json and what it names. */
function traceOnOff(label, mode, cwd, n) {
  const base = readJson(path.join(cwd, 'config.json'))
  const cfgPath = (on) => path.join(cwd, on ? 'config-trace-on.json' : 'config-trace-off.json')
  for (const on of [true, false]) writeFileSync(cfgPath(on), JSON.stringify({...base, trace: {...base.trace, enabled: on}}, null, 2))
  const env = {...process.env, PYTHONPATH: PROBE}
  const one = (on) => (i) => {
    const out = path.join(tmp, `${label}-${on ? 'on' : 'off'}-${i}`)
    const wall = run(PY, ['-m', 'repro_probe', mode, '--config', cfgPath(on), '--out', out], {
      cwd,
      env,
      what: `${label} trace ${on ? 'on' : 'off'}`,
    }).seconds
    const rj = readJson(path.join(out, 'run.json'))
    if (rj.status !== 'ok') throw new BenchError(`${label} trace ${on ? 'on' : 'off'}: status ${rj.status}`)
    rmSync(out, {recursive: true, force: true})
    return {
      wall,
      train: rj.timings.train_seconds ?? rj.timings.script_seconds ?? rj.timings.total_seconds,
      trace: rj.timings.trace_seconds ?? 0,
      steps: rj.steps,
    }
  }
  return interleaved(n, label, one(true), one(false))
}

function benchWorkloads() {
  const N = Math.max(1, Math.min(CFG.probeN, 5))
  const inputs = prepareWorkloadInputs()
  for (const w of ['mlp', 'cnn', 'lstm', 'attention']) {
    const [on, off] = traceOnOff(`6 ${w}`, 'train', inputs[w], N)
    const pick = (xs, k) => xs.map((x) => x[k])
    row(
      `6. probe instrumentation, ${w}`,
      `\`timings.train_seconds\` of the ${w} workload (default config, ${on[0].steps} steps) with the full trace (A) vs \`trace.enabled: false\` (B); process wall time A ${median(pick(on, 'wall')).toFixed(2)} s, B ${median(pick(off, 'wall')).toFixed(2)} s`,
      secs(pick(on, 'train')),
      secs(pick(off, 'train')),
      pairedRatio(pick(on, 'train'), pick(off, 'train')),
      `${N} each, interleaved`,
    )
  }
}

function benchScript() {
  const N = Math.max(1, Math.min(CFG.probeN, 5))
  const repo = path.join(ROOT, 'examples', 'ml-repo')
  const cfg = readJson(path.join(repo, 'repro.config.json'))
  const s = cfg.script
  const out = path.join(tmp, 'warm-script')
  log('7 script: warm-up audit of the example script, untimed: takes the probe inputs from its run directory')
  const args = [
    'audit',
    '--python',
    PY,
    '--script',
    s.path,
    '--script-args',
    (s.args ?? []).join(' '),
    '--max-steps',
    String(s.max_steps ?? 30),
  ]
  for (const inc of s.include ?? []) args.push('--include', inc)
  run(process.execPath, [REPRO, ...args, '--repeats', '1', '--no-explain', '--no-cache', '--format', 'json', '--out', out], {
    cwd: repo,
    env: REPRO_ENV,
    ok: [0, 1],
    what: 'warm-up audit (script)',
  })
  const inputs = path.join(tmp, 'inputs-script')
  cpSync(path.join(out, 't1-script-r1', 'inputs'), inputs, {recursive: true})
  rmSync(out, {recursive: true, force: true})
  const [on, off] = traceOnOff('7 script', 'script', inputs, N)
  const pick = (xs, k) => xs.map((x) => x[k])
  row(
    "7. the tracer on the user's script",
    `process wall time of \`${PY} -m repro_probe script\` on examples/ml-repo's train.py (${s.args?.join(' ') ?? ''}, ${on[0].steps} optimizer steps, two DataLoader workers): traced (A) vs \`trace.enabled: false\` (B, the same seeded, bounded run without hooks)`,
    secs(pick(on, 'wall')),
    secs(pick(off, 'wall')),
    pairedRatio(pick(on, 'wall'), pick(off, 'wall')),
    `${N} each, interleaved`,
  )
}

// ---------------------------------------------------------------------------------------------
// 8. Every workload on two images: audit wall time with and without the explain reruns

function benchWorkloadsAudit() {
  const bench = '8. `--workload all` audit, two images'
  const images = ['repro-fixture:bookworm', 'repro-fixture:trixie']
  const what = `\`repro audit --image ${images.join(' --image ')} --workload all --repeats 2\``
  for (const image of images) {
    const missing = dockerImageOk(image)
    if (missing) return skip(bench, what, missing)
  }
  const N = QUICK ? 1 : 2
  const one =
    (explain, jobs = 1) =>
    (i) => {
      const out = path.join(tmp, `b8-${explain ? 'explain' : 'noexplain'}-j${jobs}-${i}`)
      const args = [
        REPRO,
        'audit',
        ...images.flatMap((x) => ['--image', x]),
        '--workload',
        'all',
        '--repeats',
        '2',
        '--no-cache',
        '--format',
        'json',
        '--out',
        out,
      ]
      if (!explain) args.push('--no-explain')
      if (jobs > 1) args.push('--jobs', String(jobs))
      const r = run(process.execPath, args, {
        env: REPRO_ENV,
        ok: [0, 1],
        what: `workload-all audit ${explain ? 'with' : 'without'} explain, --jobs ${jobs}`,
      })
      const report = readJson(path.join(out, 'report.json'))
      const perWorkload = {}
      // each run split: interpreter + torch start (the probe's interpreter_seconds + import_seconds),
      // probe work (its total_seconds after the import), engine and launcher (the rest of the host's
      // create-to-copy-out seconds)
      const split = {start: [], work: [], engine: []}
      for (const t of report.targets) {
        if (t.status !== 'ok') throw new BenchError(`${what}: target ${t.name} failed: ${t.error?.line ?? t.status}`)
        for (const x of t.runs) {
          const w = x.workload ?? 'mlp'
          perWorkload[w] = [...(perWorkload[w] ?? []), x.seconds]
          const tm = x.timings ?? {}
          if (typeof tm.total_seconds === 'number' && typeof tm.interpreter_seconds === 'number') {
            split.start.push(tm.interpreter_seconds + (tm.import_seconds ?? 0))
            split.work.push(tm.total_seconds - (tm.import_seconds ?? 0))
            split.engine.push(x.seconds - tm.total_seconds - tm.interpreter_seconds)
          }
        }
      }
      // the experiments' own wall time by kind (attribution.explain_seconds, per workload)
      const explained = {zoom: 0, knob_reruns: 0, replays: 0}
      for (const at of [report.attribution, ...(report.by_workload ?? []).map((w) => w.attribution)]) {
        for (const k of Object.keys(explained)) explained[k] += at?.explain_seconds?.[k] ?? 0
      }
      rmSync(out, {recursive: true, force: true})
      return {seconds: r.seconds, perWorkload, split, explained}
    }
  const [withExplain, without] = interleaved(N, '8 workload-all audit', one(true), one(false))
  // the same audit with --jobs 2: the targets side by side, then every workload's experiments
  // side by side, two probe runs at a time
  const jobs2 = Array.from({length: N}, (_, i) => one(true, 2)(i))
  const perRun = Object.entries(without[0].perWorkload)
    .map(([w, xs]) => `${w} ${median(xs).toFixed(1)} s`)
    .join(', ')
  const {split} = without[0]
  const splitText = split.start.length
    ? `; each run split (medians over the ${split.start.length} runs): interpreter + torch start ${median(split.start).toFixed(2)} s, probe work ${median(split.work).toFixed(2)} s, engine and launcher (copy-in, status, copy-out, collected; each target's container created, started and removed once) ${median(split.engine).toFixed(2)} s`
    : ''
  const e = withExplain.map((x) => x.explained)
  const explainText = `; with explain, the experiments' probe runs summed by kind (medians): zoom ${median(e.map((x) => x.zoom)).toFixed(1)} s, knob reruns ${median(e.map((x) => x.knob_reruns)).toFixed(1)} s, op replays ${median(e.map((x) => x.replays)).toFixed(1)} s (timed apart), so A without the replays ${median(withExplain.map((x) => x.seconds - x.explained.replays)).toFixed(1)} s (goal ≤ 120 s); A with \`--jobs 2\` ${median(jobs2.map((x) => x.seconds)).toFixed(1)} s (its experiments' runs overlap, so their summed seconds are not subtracted)`
  const pick = (xs) => xs.map((x) => x.seconds)
  row(
    bench,
    `${what}, wall time with the explain reruns (A; goal ≤ 120 s) vs \`--no-explain\` (B; goal ≤ 60 s), no run cache; seconds per run from copy-in to copy-out, the first in each container also its create and start (median of both images' runs): ${perRun}${splitText}${explainText}`,
    secs(pick(withExplain)),
    secs(pick(without)),
    pairedRatio(pick(withExplain), pick(without)),
    `${N} each, interleaved`,
  )
}

// ---------------------------------------------------------------------------------------------
// 9. Compare scaling: TS compare vs np.allclose from 10^4 to 10^8 float32 elements

/** A duration per call in the unit that suits it. */
function perCall(s) {
  return s < 1e-3 ? `${(s * 1e6).toFixed(1)} µs` : s < 1 ? `${(s * 1e3).toFixed(2)} ms` : `${s.toFixed(2)} s`
}

function benchCompareScaling() {
  const exponents = QUICK ? [4, 5, 6] : [4, 5, 6, 7, 8]
  // each child process times `reps` samples; the TS and numpy children alternate `runs` times
  const runs = QUICK ? 1 : 3
  for (const e of exponents) {
    const n = 10 ** e
    const file = path.join(tmp, `scaling-${e}.f32`)
    log(`9 compare scaling: writing 2 × float32[10^${e}] (${((4 * n) / 2 ** 20).toFixed(1)} MiB each)`)
    writeArrays(file, n)
    // calls per timed sample: about 10^7 elements' worth, so the small sizes are timed over many calls
    const inner = Math.max(1, Math.round(1e7 / n))
    const reps = QUICK ? 1 : e >= 8 ? 2 : 3
    const args = [file, String(n), String(reps), String(inner)]
    const [ts, np] = interleaved(
      runs,
      `9 compare scaling 10^${e}`,
      () => {
        const r = run(process.execPath, [path.join(ROOT, 'bench', 'compare-ts.mjs'), ...args], {what: 'TS compare', cpu: true})
        return {...JSON.parse(r.stdout), rss: r.maxRssKiB}
      },
      () => {
        const r = run(PY, [path.join(ROOT, 'bench', 'compare_np.py'), ...args, '--allclose-only'], {what: 'numpy allclose', cpu: true})
        return {...JSON.parse(r.stdout), rss: r.maxRssKiB}
      },
    )
    checkSameMetrics(ts[0], np[0])
    rmSync(file, {force: true})
    const tsS = ts.flatMap((x) => x.seconds)
    const npS = np.flatMap((x) => x.allclose_seconds)
    const gbps = (s) => (8 * n) / s / 1e9
    const rss = (xs) => (xs[0].rss === null ? 'peak RSS —' : `peak RSS ${(median(xs.map((x) => x.rss)) / 1024).toFixed(0)} MiB`)
    const cell = (xs, rs) =>
      `${perCall(median(xs))} (${perCall(Math.min(...xs))}–${perCall(Math.max(...xs))}), ${gbps(median(xs)).toFixed(2)} GB/s, ${rss(rs)}`
    row(
      `9. compare scaling, 10^${e}`,
      `TS \`compareValues\` (A) vs numpy ${np[0].numpy} \`np.allclose\` (B) on bench 3's kind of pair, 2 × float32[10^${e}] (${((4 * n) / 2 ** 20).toFixed(e >= 6 ? 0 : 2)} MiB each, ${ts[0].metrics.mismatches} mismatches); time per call (${inner} call${inner > 1 ? 's' : ''} per sample), GB/s of both inputs, peak RSS of the child process (GNU time), which reads the file straight into the two arrays; ratio: throughput A / B`,
      cell(tsS, ts),
      cell(npS, np),
      median(npS) / median(tsS),
      `${runs} × ${reps} samples each, processes alternated`,
    )
  }
}

// ---------------------------------------------------------------------------------------------
// 10. Audit scaling: 2, 4, 8 local-python targets with --jobs 1 and --jobs 2

function benchAuditScaling() {
  const counts = QUICK ? [2] : [2, 4, 8]
  const N = QUICK ? 1 : 2
  for (const k of counts) {
    const target = Array.from({length: k}, () => ['--python', PY]).flat()
    const one = (jobs) => (i) => {
      const out = path.join(tmp, `b10-${k}-j${jobs}-${i}`)
      const r = timedAudit(target, 1, out, `repro audit, ${k} targets, --jobs ${jobs}`, {cpu: true, extra: ['--jobs', String(jobs)]})
      rmSync(out, {recursive: true, force: true})
      return r
    }
    const [two, single] = interleaved(N, `10 audit scaling, ${k} targets`, one(2), one(1))
    const wall = (xs) => xs.map((x) => x.seconds)
    const cpu = (xs) => (xs[0].cpuSeconds === null ? '' : `; CPU time (user + sys) A ${secs(xs.map((x) => x.cpuSeconds))}`)
    const cpuB = single[0].cpuSeconds === null ? '' : `, B ${secs(single.map((x) => x.cpuSeconds))}`
    row(
      `10. audit scaling, ${k} targets`,
      `\`repro audit\` with ${k} × \`--python ${PY}\`, \`--repeats 1 --no-explain ${noCache().join(' ')} --format json\`: \`--jobs 2\` (A) vs \`--jobs 1\` (B), wall time, ${os.availableParallelism()} cores; ${k} probe runs, ${(median(wall(single)) / k).toFixed(2)} s per run with --jobs 1${cpu(two)}${cpuB}`,
      secs(wall(two)),
      secs(wall(single)),
      pairedRatio(wall(two), wall(single)),
      `${N} each, interleaved`,
    )
  }
}

// ---------------------------------------------------------------------------------------------

function machineLine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : ''
  const model = (/^model name\s*:\s*(.*)$/m.exec(cpuinfo) ?? [])[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown CPU'
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || os.cpus().length
  const parts = [`${model}, ${cores} cores (/proc/cpuinfo)`, `${Math.round(os.totalmem() / 2 ** 30)} GiB RAM`, `node ${process.version}`]
  const py = spawnSync(
    PY,
    [
      '-c',
      'import sys, torch, numpy; print("python %d.%d.%d" % sys.version_info[:3], "torch", torch.__version__, "numpy", numpy.__version__)',
    ],
    {encoding: 'utf8'},
  )
  if (py.status === 0) parts.push(`${PY}: ${py.stdout.trim()}`)
  const dk = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], {encoding: 'utf8'})
  if (dk.status === 0) parts.push(`docker ${dk.stdout.trim()}`)
  parts.push(`load average at start ${os.loadavg()[0].toFixed(2)}`)
  parts.push(new Date().toISOString().replace(/\.\d+Z$/, 'Z'))
  return parts.join(' · ')
}

function escapeCell(s) {
  return String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ')
}

function markdown(machine, elapsed) {
  const lines = [
    '# repro benchmarks',
    '',
    `Generated by \`npm run bench\`${QUICK ? ' (BENCH_QUICK=1: smoke run, one repetition)' : ''} — ${elapsed.toFixed(0)} s in all. A and B are measured in the same bench run, interleaved (alternating which goes first); the ratio is the median of the per-repetition ratios A_i / B_i, which cancels most of the drift of a shared machine's load. For 3a/3b and 9 it is median throughput(A) / median throughput(B), so > 1 means the TS core is faster. Measured values: median (min–max).`,
    '',
    '| benchmark | what | measured A | measured B | ratio | repetitions |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${[r.bench, r.what, r.a, r.b, typeof r.ratio === 'number' ? `**${r.ratio.toFixed(2)}**` : r.ratio, r.reps].map(escapeCell).join(' | ')} |`,
    ),
    '',
    `Machine: ${machine}`,
    '',
  ]
  if (checkBreakdown) {
    const b = checkBreakdown
    lines.push(
      `Bench 5b, where a warm \`repro check\` spends its time: median ms of ${b.runs} warm checks with \`REPRO_TIMINGS=1\` (docs/ci.md) per build. Phases overlap (the engine calls run beside git and the baseline), so they do not add up to the total.`,
      '',
      `| phase | ${b.builds.join(' | ')} |`,
      `|---|${b.builds.map(() => '---:').join('|')}|`,
      ...b.rows.map((r) => `| ${r.map(escapeCell).join(' | ')} |`),
      '',
    )
  }
  return lines.join('\n')
}

async function main() {
  if (!existsSync(path.join(ROOT, 'dist', 'src', 'core', 'metrics.js')))
    throw new BenchError('dist/ is not built: run `npx tsc -p tsconfig.json` (or `npm run bench`)')
  if (!existsSync(PY)) throw new BenchError(`${PY} does not exist (set BENCH_PYTHON to a python with torch)`)
  const machine = machineLine()
  log(`${QUICK ? 'quick' : 'full'} run; temp dir ${tmp}`)
  const benches = [
    [1, benchAuditPython],
    [2, benchAuditDocker],
    [3, benchCompare],
    [4, benchProbe],
    [5, benchCheck],
    [6, benchWorkloads],
    [7, benchScript],
    [8, benchWorkloadsAudit],
    [9, benchCompareScaling],
    [10, benchAuditScaling],
  ]
  for (const [id, fn] of benches) if (wanted(id)) fn()
  const elapsed = (Date.now() - t0) / 1000
  const md = markdown(machine, elapsed)
  process.stdout.write(md)
  if (OUT_MD) {
    writeFileSync(OUT_MD, md)
    // the linter checks Markdown formatting (aligned tables): write it the way it checks it
    spawnSync(path.join(ROOT, 'node_modules', '.bin', 'biome'), ['format', '--write', OUT_MD], {stdio: 'ignore'})
    log(`wrote ${path.relative(process.cwd(), OUT_MD) || OUT_MD}`)
  }
  log(`done in ${elapsed.toFixed(0)} s`)
}

try {
  await main()
} catch (e) {
  process.stderr.write(`bench: FAILED: ${e instanceof BenchError ? e.message : (e?.stack ?? e)}\n`)
  process.exitCode = 1
} finally {
  cleanup()
}
