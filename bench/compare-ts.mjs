#!/usr/bin/env node
// Child of bench/run.mjs: times the TS compare core (`compareValues`, dist/src/core/metrics.js)
// on two float32 arrays read from FILE (a then b, raw little-endian). Prints one JSON line:
// {"seconds": [...], "metrics": {...}}. Run in its own process so the harness's heap is not in
// the way. Usage: node bench/compare-ts.mjs FILE N REPS

import {readFileSync} from 'node:fs'
import {performance} from 'node:perf_hooks'
import {fileURLToPath} from 'node:url'
import path from 'node:path'

const [file, nArg, repsArg] = process.argv.slice(2)
const n = Number(nArg)
const reps = Number(repsArg)
if (!file || !Number.isInteger(n) || n <= 0 || !Number.isInteger(reps) || reps <= 0) {
  process.stderr.write('usage: compare-ts.mjs FILE N REPS\n')
  process.exit(2)
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const {compareValues} = await import(path.join(root, 'dist/src/core/metrics.js'))

const buf = readFileSync(file)
if (buf.length !== 8 * n) throw new Error(`${file}: ${buf.length} bytes, expected ${8 * n}`)
// copy into aligned buffers (a Buffer's byteOffset need not be a multiple of 4)
const a = new Float32Array(n)
const b = new Float32Array(n)
new Uint8Array(a.buffer).set(buf.subarray(0, 4 * n))
new Uint8Array(b.buffer).set(buf.subarray(4 * n, 8 * n))

const tol = {rtol: 1.3e-6, atol: 1e-5}
const actual = {dtype: 'float32', shape: [n], data: a}
const expected = {dtype: 'float32', shape: [n], data: b}
let metrics = compareValues(actual, expected, tol) // warm-up: JIT
const seconds = []
for (let r = 0; r < reps; r++) {
  const t0 = performance.now()
  metrics = compareValues(actual, expected, tol)
  seconds.push((performance.now() - t0) / 1000)
}
process.stdout.write(`${JSON.stringify({seconds, metrics})}\n`)
