#!/usr/bin/env node
// Child of bench/run.mjs: times the TS compare core (`compareValues`, dist/src/core/metrics.js)
// on two float32 arrays read from FILE (a then b, raw little-endian). Prints one JSON line:
// {"seconds": [...], "metrics": {...}}, seconds per call. Run in its own process so the
// harness's heap is not in the way, and so its peak RSS is the compare's: the file is read
// straight into the two arrays, with no copy of it besides. INNER calls (default 1) make one
// timed sample, for arrays too small to time one call. As in the product (src/cli/base.ts,
// src/artifacts/stored-values.ts), the compare's second thread is registered and the arrays are
// read into buffers from valuesBuffer (shared ones from 2^19 elements, which the compare splits
// with that thread); the timed calls start once the thread is up (the warm-up call starts it).
// Usage: node bench/compare-ts.mjs FILE N REPS [INNER]

import {closeSync, openSync, readSync} from 'node:fs'
import {performance} from 'node:perf_hooks'
import {fileURLToPath} from 'node:url'
import path from 'node:path'

const [file, nArg, repsArg, innerArg = '1'] = process.argv.slice(2)
const n = Number(nArg)
const reps = Number(repsArg)
const inner = Number(innerArg)
if (!file || !Number.isInteger(n) || n <= 0 || !Number.isInteger(reps) || reps <= 0 || !Number.isInteger(inner) || inner <= 0) {
  process.stderr.write('usage: compare-ts.mjs FILE N REPS [INNER]\n')
  process.exit(2)
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const {compareValues, setCompareHelper} = await import(path.join(root, 'dist/src/core/metrics.js'))
const {CompareThread} = await import(path.join(root, 'dist/src/app/compare-thread.js'))
const {valuesBuffer} = await import(path.join(root, 'dist/src/artifacts/stored-values.js'))
const thread = new CompareThread()
setCompareHelper(thread)

// read each half straight into its own (aligned) array
const a = new Float32Array(valuesBuffer(4 * n).buffer)
const b = new Float32Array(valuesBuffer(4 * n).buffer)
const fd = openSync(file, 'r')
for (const [k, arr] of [a, b].entries()) {
  const bytes = new Uint8Array(arr.buffer)
  let got = 0
  while (got < bytes.length) {
    const r = readSync(fd, bytes, got, bytes.length - got, k * 4 * n + got)
    if (r === 0) throw new Error(`${file}: ends early, expected ${8 * n} bytes`)
    got += r
  }
}
closeSync(fd)

const tol = {rtol: 1.3e-6, atol: 1e-5}
const actual = {dtype: 'float32', shape: [n], data: a}
const expected = {dtype: 'float32', shape: [n], data: b}
let metrics = compareValues(actual, expected, tol) // warm-up: JIT, and starts the second thread
await thread.ready()
const seconds = []
for (let r = 0; r < reps; r++) {
  const t0 = performance.now()
  for (let i = 0; i < inner; i++) metrics = compareValues(actual, expected, tol)
  seconds.push((performance.now() - t0) / 1000 / inner)
}
process.stdout.write(`${JSON.stringify({seconds, metrics})}\n`)
