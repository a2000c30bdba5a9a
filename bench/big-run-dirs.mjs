#!/usr/bin/env node
// Writes two run directories with large stored tensors, for measuring what `repro compare`
// holds in memory (bench/results.md, "Scaling (issue 28)"). fingerprint.json and run.json come
// from fixtures/runs/python-threads/t1-r1; trace.json has one stored step of ENTRIES float32
// entries (`fwd/l0`, …) that fill MB megabytes per directory; in B the last DIFFER of them are
// moved by a few ULP (digests differ, values are compared), the others are bitwise identical.
//
// Usage: node bench/big-run-dirs.mjs DIR_A DIR_B [MB=500] [ENTRIES=10] [DIFFER=ENTRIES/2]

import {createHash} from 'node:crypto'
import {closeSync, copyFileSync, mkdirSync, openSync, writeFileSync, writeSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const FIXTURE = path.join(ROOT, 'fixtures', 'runs', 'python-threads', 't1-r1')

const [dirA, dirB, mbArg = '500', entriesArg = '10', differArg] = process.argv.slice(2)
const entries = Number(entriesArg)
const differ = differArg === undefined ? Math.floor(entries / 2) : Number(differArg)
const elems = Math.floor((Number(mbArg) * 1e6) / 4 / entries)
if (!dirA || !dirB || !(elems > 0) || !(differ >= 0 && differ <= entries)) {
  process.stderr.write('usage: big-run-dirs.mjs DIR_A DIR_B [MB=500] [ENTRIES=10] [DIFFER=ENTRIES/2]\n')
  process.exit(2)
}

/** Entry i's values in run a, or in b (moved by 1–3 ULP where i is among the last `differ`). */
function values(i, side) {
  const out = new Float32Array(elems)
  const bits = new Int32Array(out.buffer)
  let s = (0x9e3779b9 ^ (i * 0x85ebca6b)) >>> 0
  for (let k = 0; k < elems; k++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    out[k] = s / 4294967296 - 0.5
  }
  if (side === 'b' && i >= entries - differ) for (let k = 0; k < elems; k += 3) if (out[k] !== 0) bits[k] += 1 + (k % 3)
  return out
}

function writeRun(dir, side) {
  mkdirSync(dir, {recursive: true})
  for (const f of ['fingerprint.json', 'run.json']) copyFileSync(path.join(FIXTURE, f), path.join(dir, f))
  const names = Array.from({length: entries}, (_, i) => `fwd/l${i}`)
  const header = {__metadata__: {generator: 'bench/big-run-dirs.mjs'}}
  names.forEach((name, i) => {
    header[`0|${name}`] = {dtype: 'F32', shape: [elems], data_offsets: [i * 4 * elems, (i + 1) * 4 * elems]}
  })
  let json = JSON.stringify(header)
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8)
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)))
  const fd = openSync(path.join(dir, 'tensors.safetensors'), 'w')
  writeSync(fd, len)
  writeSync(fd, json)
  const trace = []
  names.forEach((name, i) => {
    const v = values(i, side)
    const bytes = new Uint8Array(v.buffer)
    writeSync(fd, bytes)
    trace.push({name, dtype: 'float32', shape: [elems], sha256: createHash('sha256').update(bytes).digest('hex'), nonfinite: 0})
  })
  closeSync(fd)
  writeFileSync(
    path.join(dir, 'trace.json'),
    JSON.stringify({schema: 'repro.trace/1', steps: [{step: 0, epoch: 0, stored: true, entries: trace}]}),
  )
}

writeRun(dirA, 'a')
writeRun(dirB, 'b')
process.stdout.write(
  `${JSON.stringify({entries, differ, elements_per_entry: elems, bytes_per_dir: entries * elems * 4, tensor_bytes: elems * 4})}\n`,
)
