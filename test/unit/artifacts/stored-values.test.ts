import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {readRunDir, readStoredValues} from '../../../src/artifacts/run-dir.js'
import {parseSafetensors, type TensorToWrite, writeSafetensors} from '../../../src/artifacts/safetensors.js'
import {CompareThread} from '../../../src/app/compare-thread.js'
import {PARALLEL_MIN_ELEMENTS, setCompareHelper} from '../../../src/core/metrics.js'
import {TOLERANCE} from '../../../src/core/pairs.js'
import {replayInputValues} from '../../../src/core/replay.js'
import {compareTraces} from '../../../src/core/trace-compare.js'
import {storedKey, type Trace, type TraceEntry} from '../../../src/core/types.js'
import {isReproError} from '../../../src/errors.js'

const FIXTURE_RUN = path.join(process.cwd(), 'fixtures', 'runs', 'python-threads', 't1-r1')

function tmpDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'repro-stored-values-'))
}

/** A run directory's tensors.safetensors from `tensors`; returns the directory. */
function storedFile(tensors: Record<string, TensorToWrite>, dir = tmpDir()): string {
  writeFileSync(path.join(dir, 'tensors.safetensors'), writeSafetensors(tensors))
  return dir
}

/** Every read from the file, as [offset, length]. */
function readLog(): {reads: [number, number][]; onRead: (offset: number, length: number) => void} {
  const reads: [number, number][] = []
  return {reads, onRead: (offset, length) => reads.push([offset, length])}
}

/** Where the tensor's bytes lie in the file (absolute offset, length), from the header. */
function dataSpan(file: string, name: string): [number, number] {
  const buf = readFileSync(file)
  const headerLen = Number(buf.readBigUInt64LE(0))
  const info = parseSafetensors(buf).tensors.get(name)!
  return [8 + headerLen + info.begin, info.end - info.begin]
}

const sha = (data: ArrayBufferView) =>
  createHash('sha256')
    .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .digest('hex')

function entry(name: string, data: Float32Array): TraceEntry {
  return {name, dtype: 'float32', shape: [data.length], sha256: sha(data), nonfinite: 0}
}

/** The ReproError readStoredValues or a read throws, matched on its message. */
function corrupt(message: RegExp) {
  return (e: unknown) => isReproError(e) && /tensors\.safetensors in .* is corrupt: /.test(e.message) && message.test(e.message)
}

describe('stored values read on demand (readStoredValues)', () => {
  test('decode what parseSafetensors decodes, every dtype, through get, has, size, keys and iteration', async () => {
    const tensors: Record<string, TensorToWrite> = {
      a: {dtype: 'F32', shape: [2, 2], data: new Float32Array([1, -0, Infinity, NaN])},
      b: {dtype: 'F64', shape: [], data: new Float64Array([0.1])},
      c: {dtype: 'I64', shape: [3], data: new BigInt64Array([1n, -2n, 3n])},
      d: {dtype: 'I32', shape: [2], data: new Int32Array([7, -8])},
      e: {dtype: 'U8', shape: [3], data: new Uint8Array([1, 2, 255])},
      f: {dtype: 'BOOL', shape: [2], data: new Uint8Array([0, 1])},
      h: {dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000])},
      z: {dtype: 'F32', shape: [0], data: new Float32Array(0)},
    }
    const dir = storedFile(tensors)
    const eager = parseSafetensors(readFileSync(path.join(dir, 'tensors.safetensors')))
    const lazy = await readStoredValues(dir, 'run')
    assert.equal(lazy.size, 8)
    assert.deepEqual([...lazy.keys()], [...eager.tensors.keys()])
    assert.ok(lazy.has('a') && !lazy.has('nope'))
    assert.equal(lazy.get('nope'), undefined)
    for (const name of eager.tensors.keys()) assert.deepEqual(lazy.get(name), eager.read(name), name)
    assert.deepEqual(
      [...lazy].map(([k, v]) => [k, v]),
      [...eager.tensors.keys()].map((k) => [k, eager.read(k)]),
    )
    assert.deepEqual(
      [...lazy.values()],
      [...eager.tensors.keys()].map((k) => eager.read(k)),
    )
    // each get is values of its own, aligned, never a view of a shared buffer
    const x = lazy.get('b')!
    assert.equal(x.data.byteOffset, 0)
    assert.notEqual(lazy.get('b')!.data.buffer, x.data.buffer)
    rmSync(dir, {recursive: true, force: true})
  })

  test('opening reads the header only; a get reads that entry only', async () => {
    const dir = storedFile({
      a: {dtype: 'F32', shape: [4], data: new Float32Array([1, 2, 3, 4])},
      b: {dtype: 'F32', shape: [2], data: new Float32Array([5, 6])},
    })
    const file = path.join(dir, 'tensors.safetensors')
    const {reads, onRead} = readLog()
    const values = await readStoredValues(dir, 'run', 'tensors.safetensors', onRead)
    const headerLen = Number(readFileSync(file).readBigUInt64LE(0))
    assert.deepEqual(reads, [
      [0, 8],
      [8, headerLen],
    ])
    reads.length = 0
    assert.deepEqual([...(values.get('b')!.data as Float32Array)], [5, 6])
    assert.deepEqual(reads, [dataSpan(file, 'b')])
    rmSync(dir, {recursive: true, force: true})
  })

  test('compare reads only the entries whose digests differ; identical ones are never read', async () => {
    const same = new Float32Array(1024).fill(0.5)
    const w0 = new Float32Array([1, 2, 3])
    const w1 = new Float32Array([1, 2, 3.5])
    const dirA = storedFile({'0|fwd/a': {dtype: 'F32', shape: [1024], data: same}, '0|fwd/w': {dtype: 'F32', shape: [3], data: w0}})
    const dirB = storedFile({'0|fwd/a': {dtype: 'F32', shape: [1024], data: same}, '0|fwd/w': {dtype: 'F32', shape: [3], data: w1}})
    const logA = readLog()
    const logB = readLog()
    const va = await readStoredValues(dirA, 'a', 'tensors.safetensors', logA.onRead)
    const vb = await readStoredValues(dirB, 'b', 'tensors.safetensors', logB.onRead)
    logA.reads.length = 0
    logB.reads.length = 0
    const trace = (w: Float32Array): Trace => ({
      steps: [{step: 0, epoch: 0, stored: true, entries: [entry('fwd/a', same), entry('fwd/w', w)]}],
    })
    const cmp = compareTraces(trace(w0), va, trace(w1), vb, TOLERANCE)
    assert.equal(cmp.counts.identical, 1)
    assert.equal(cmp.counts.differing_with_values, 1)
    assert.ok(cmp.differing[0]!.metrics!.max_abs > 0.49)
    assert.deepEqual(logA.reads, [dataSpan(path.join(dirA, 'tensors.safetensors'), '0|fwd/w')])
    assert.deepEqual(logB.reads, [dataSpan(path.join(dirB, 'tensors.safetensors'), '0|fwd/w')])
    rmSync(dirA, {recursive: true, force: true})
    rmSync(dirB, {recursive: true, force: true})
  })

  test('large entries are read into shared memory, and their compare is split with the second thread: the same metrics', async () => {
    const n = PARALLEL_MIN_ELEMENTS // 2 MiB of float32: the smallest entry that is shared and split
    const w0 = Float32Array.from({length: n}, (_, i) => Math.sin(i))
    const w1 = w0.map((v, i) => (i % 1000 === 7 ? v + 1e-3 : v))
    const small = new Float32Array([1, 2])
    const dirA = storedFile({'0|fwd/w': {dtype: 'F32', shape: [n], data: w0}, '0|fwd/s': {dtype: 'F32', shape: [2], data: small}})
    const dirB = storedFile({'0|fwd/w': {dtype: 'F32', shape: [n], data: w1}, '0|fwd/s': {dtype: 'F32', shape: [2], data: small}})
    const va = await readStoredValues(dirA, 'a')
    const vb = await readStoredValues(dirB, 'b')
    assert.ok(va.get('0|fwd/w')!.data.buffer instanceof SharedArrayBuffer)
    assert.ok(!(va.get('0|fwd/s')!.data.buffer instanceof SharedArrayBuffer))
    const trace = (w: Float32Array): Trace => ({steps: [{step: 0, epoch: 0, stored: true, entries: [entry('fwd/w', w)]}]})
    const one = compareTraces(trace(w0), va, trace(w1), vb, TOLERANCE).differing[0]!.metrics!
    const thread = new CompareThread()
    try {
      assert.equal(await thread.ready(), true)
      setCompareHelper(thread)
      const two = compareTraces(trace(w0), va, trace(w1), vb, TOLERANCE).differing[0]!.metrics!
      assert.equal(thread.jobs, 1)
      assert.equal(two.mismatches, Math.ceil((n - 7) / 1000))
      // the sums are the only figures whose order changes (two halves): within metrics.ts's bound
      assert.deepEqual({...two, rel_l2: 0, cosine: 0}, {...one, rel_l2: 0, cosine: 0})
      assert.ok(Math.abs(two.rel_l2 - one.rel_l2) <= 1e-12 * one.rel_l2)
      assert.ok(Math.abs(two.cosine - one.cosine) <= 1e-12)
    } finally {
      setCompareHelper(null)
      await thread.close()
    }
    rmSync(dirA, {recursive: true, force: true})
    rmSync(dirB, {recursive: true, force: true})
  })

  test('large entries read one after another and dropped do not pile up in memory (shared buffers are collected)', () => {
    // 16 entries of 16 MiB, each read and dropped: V8 does not collect for shared buffers by
    // itself, so before src/env/gc.ts the child held all 256 MiB at the end
    const n = 4 * 2 ** 20
    const tensors: Record<string, TensorToWrite> = {}
    for (let i = 0; i < 16; i++) tensors[`0|fwd/w${i}`] = {dtype: 'F32', shape: [n], data: new Float32Array(n).fill(i)}
    const dir = storedFile(tensors)
    const script = `
      import {readStoredValues} from ${JSON.stringify(path.resolve('dist/src/artifacts/run-dir.js'))}
      const values = await readStoredValues(${JSON.stringify(dir)}, 'run')
      const base = process.memoryUsage().rss
      let peak = 0, shared = 0
      for (let i = 0; i < 16; i++) {
        const v = values.get('0|fwd/w' + i)
        if (v.data.buffer instanceof SharedArrayBuffer && v.data[0] === i) shared++
        peak = Math.max(peak, process.memoryUsage().rss - base)
      }
      console.log(JSON.stringify({shared, peakMiB: peak / 2 ** 20}))
    `
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8'})
    rmSync(dir, {recursive: true, force: true})
    assert.equal(r.status, 0, r.stderr)
    const {shared, peakMiB} = JSON.parse(r.stdout) as {shared: number; peakMiB: number}
    assert.equal(shared, 16)
    assert.ok(peakMiB < 160, `peak ${peakMiB.toFixed(0)} MiB above the start, for 256 MiB read`)
  })

  test('a real run directory reads back as the whole file decodes; replay inputs read only what the plan names', async () => {
    const run = await readRunDir(FIXTURE_RUN, 'run')
    const eager = parseSafetensors(readFileSync(path.join(FIXTURE_RUN, 'tensors.safetensors')))
    assert.equal(run.values.size, eager.tensors.size)
    for (const name of eager.tensors.keys()) assert.deepEqual(run.values.get(name), eager.read(name), name)
    const {reads, onRead} = readLog()
    const values = await readStoredValues(FIXTURE_RUN, 'run', 'tensors.safetensors', onRead)
    const key = [...eager.tensors.keys()].find((k) => k.includes('|param/'))!
    const [stepText, name] = key.split('|') as [string, string]
    const step = stepText === 'init' ? 'init' : Number(stepText)
    reads.length = 0
    const inputs = replayInputValues({...run, values}, {inputs: [{name: 'x', step, entry: name}]} as never)
    assert.deepEqual(inputs?.get('x'), eager.read(key))
    assert.deepEqual(reads, [dataSpan(path.join(FIXTURE_RUN, 'tensors.safetensors'), storedKey(step, name))])
  })

  test('hostile headers and offsets are still rejected when the file is opened, as corrupt', async () => {
    const withHeader = (header: unknown, dataBytes: number) => {
      const json = Buffer.from(JSON.stringify(header))
      const out = Buffer.alloc(8 + json.length + dataBytes)
      out.writeBigUInt64LE(BigInt(json.length), 0)
      json.copy(out, 8)
      return out
    }
    const huge = Buffer.alloc(16)
    huge.writeBigUInt64LE(2n ** 40n, 0)
    const cases: [string, Buffer, RegExp][] = [
      ['shorter than 8 bytes', Buffer.alloc(5), /shorter than the 8-byte header/],
      ['huge header length', huge, /exceeds/],
      ['data past the end', withHeader({x: {dtype: 'F32', shape: [4], data_offsets: [0, 16]}}, 8), /past the 8-byte data buffer/],
      [
        'overlap',
        withHeader({x: {dtype: 'F32', shape: [2], data_offsets: [0, 8]}, y: {dtype: 'F32', shape: [2], data_offsets: [4, 12]}}, 12),
        /overlap/,
      ],
      ['negative offset', withHeader({x: {dtype: 'F32', shape: [1], data_offsets: [-4, 0]}}, 4), /are invalid/],
      ['size off the shape', withHeader({x: {dtype: 'F32', shape: [3], data_offsets: [0, 8]}}, 8), /expected 12/],
    ]
    for (const [what, bytes, message] of cases) {
      const dir = tmpDir()
      writeFileSync(path.join(dir, 'tensors.safetensors'), bytes)
      await assert.rejects(readStoredValues(dir, 'run'), corrupt(message), what)
      rmSync(dir, {recursive: true, force: true})
    }
  })

  test('a file truncated anywhere is rejected when opened, also past an entry nobody reads', async () => {
    const full = writeSafetensors({
      unused: {dtype: 'F32', shape: [4], data: new Float32Array(4).fill(2)},
      used: {dtype: 'F32', shape: [16], data: new Float32Array(16).fill(1)},
    })
    const dir = tmpDir()
    for (let cut = 0; cut < full.length; cut += 7) {
      writeFileSync(path.join(dir, 'tensors.safetensors'), full.subarray(0, cut))
      await assert.rejects(readStoredValues(dir, 'run'), corrupt(/./), `cut at ${cut}`)
    }
    rmSync(dir, {recursive: true, force: true})
  })

  test('a file that shrinks after it was opened fails the read with the same corrupt error', async () => {
    const dir = storedFile({
      a: {dtype: 'F32', shape: [4], data: new Float32Array(4).fill(1)},
      b: {dtype: 'F32', shape: [4], data: new Float32Array(4).fill(2)},
    })
    const file = path.join(dir, 'tensors.safetensors')
    const values = await readStoredValues(dir, 'run')
    truncateSync(file, readFileSync(file).length - 8)
    assert.deepEqual([...(values.get('a')!.data as Float32Array)], [1, 1, 1, 1])
    assert.throws(() => values.get('b'), corrupt(/truncated since it was opened/))
    rmSync(dir, {recursive: true, force: true})
  })

  test('missing, symlinked and over-cap files are refused as before', async () => {
    const dir = tmpDir()
    await assert.rejects(readStoredValues(dir, 'run'), (e: unknown) => isReproError(e) && /tensors\.safetensors is missing/.test(e.message))
    const elsewhere = storedFile({a: {dtype: 'U8', shape: [1], data: new Uint8Array([1])}})
    symlinkSync(path.join(elsewhere, 'tensors.safetensors'), path.join(dir, 'tensors.safetensors'))
    await assert.rejects(readStoredValues(dir, 'run'), (e: unknown) => isReproError(e) && /is not a regular file/.test(e.message))
    rmSync(path.join(dir, 'tensors.safetensors'))
    mkdirSync(path.join(dir, 'tensors.safetensors'))
    await assert.rejects(readStoredValues(dir, 'run'), (e: unknown) => isReproError(e) && /is not a regular file/.test(e.message))
    rmSync(path.join(dir, 'tensors.safetensors'), {recursive: true})
    writeFileSync(path.join(dir, 'tensors.safetensors'), '')
    truncateSync(path.join(dir, 'tensors.safetensors'), 512 * 1024 * 1024 + 1) // sparse: no disk used
    await assert.rejects(readStoredValues(dir, 'run'), (e: unknown) => isReproError(e) && /over the \d+-byte cap/.test(e.message))
    rmSync(dir, {recursive: true, force: true})
    rmSync(elsewhere, {recursive: true, force: true})
  })

  test('no descriptor is left open by a file that fails to open', async () => {
    const fds = () => readdirSync('/proc/self/fd').length
    const dir = tmpDir()
    writeFileSync(path.join(dir, 'tensors.safetensors'), Buffer.alloc(5))
    const before = fds()
    for (let i = 0; i < 20; i++) await assert.rejects(readStoredValues(dir, 'run'))
    assert.equal(fds(), before)
    rmSync(dir, {recursive: true, force: true})
  })
})
