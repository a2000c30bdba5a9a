// The compare's second thread (src/app/compare-thread.ts): a real worker thread. The metrics it
// gives are checked in test/unit/core/metrics-differential.test.ts; here: a helper that fails
// leaves the caller to do the part itself, a worker that is gone is not used again, and a process
// whose worker is idle exits as if it were not there.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'
import type {Worker} from 'node:worker_threads'
import {CompareThread} from '../../../src/app/compare-thread.js'
import {type CompareHelper, compareValues, setCompareHelper} from '../../../src/core/metrics.js'
import type {TensorValues} from '../../../src/core/types.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const TOL = {rtol: 1.3e-6, atol: 1e-5}

function pair(n: number): [TensorValues, TensorValues] {
  const a = new Float32Array(new SharedArrayBuffer(4 * n))
  const b = new Float32Array(new SharedArrayBuffer(4 * n))
  for (let i = 0; i < n; i++) {
    a[i] = Math.cos(i)
    b[i] = i % 997 === 0 ? a[i]! + 1e-3 : i % 5000 === 1 ? -0 : a[i]!
  }
  b[n - 3] = Number.NaN
  return [
    {dtype: 'float32', shape: [n], data: a},
    {dtype: 'float32', shape: [n], data: b},
  ]
}

function withHelper<T>(h: CompareHelper | null, f: () => T): T {
  setCompareHelper(h, 0)
  try {
    return f()
  } finally {
    setCompareHelper(null)
  }
}

describe('the compare thread', () => {
  const [a, b] = pair(100000)
  const alone = withHelper(null, () => compareValues(a, b, TOL))

  test('a helper whose part fails: the caller computes that part, and the metrics are those of one thread', () => {
    let started = 0
    const failing: CompareHelper = {
      start: () => {
        started++
        return () => null
      },
    }
    assert.deepEqual(
      withHelper(failing, () => compareValues(a, b, TOL)),
      alone,
    )
    assert.equal(started, 1)
  })

  test('a worker that is gone: compares go on in one thread with the same metrics, the thread takes no more jobs', async () => {
    const thread = new CompareThread()
    assert.equal(await thread.ready(), true)
    const split = withHelper(thread, () => compareValues(a, b, TOL))
    assert.equal(thread.jobs, 1)
    assert.equal(split.mismatches, alone.mismatches)
    assert.equal(split.nan, 1)
    // the worker ends from outside (as a crash would): its exit event retires the thread
    const worker = (thread as unknown as {worker: Worker}).worker
    await worker.terminate()
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(
      withHelper(thread, () => compareValues(a, b, TOL)),
      alone,
    )
    assert.equal(thread.jobs, 1)
  })

  test('the bundle (scripts/bundle.mjs): its worker takes jobs, and the bundled CLI starts that one', async () => {
    const bundle = path.join(HERE, '../../../src/bundle')
    const thread = new CompareThread(pathToFileURL(path.join(bundle, 'compare-thread-worker.js')))
    try {
      assert.equal(await thread.ready(), true, 'the bundled worker started')
      assert.deepEqual(withHelper(thread, () => compareValues(a, b, TOL)).mismatches, alone.mismatches)
      assert.equal(thread.jobs, 1)
    } finally {
      await thread.close()
    }
    // compare-thread.ts names its worker relative to itself: in the bundle, relative to repro.js
    assert.match(readFileSync(path.join(bundle, 'repro.js'), 'utf8'), /new URL\("\.\/compare-thread-worker\.js", import\.meta\.url\)/)
  })

  test('the worker lets go of each pair it compared: 24 split pairs of 32 MiB in a row do not pile up in memory', () => {
    const script = `
      import {CompareThread} from ${JSON.stringify(path.join(HERE, '../../../src/app/compare-thread.js'))}
      import {valuesBuffer} from ${JSON.stringify(path.join(HERE, '../../../src/artifacts/stored-values.js'))}
      import {compareValues, setCompareHelper} from ${JSON.stringify(path.join(HERE, '../../../src/core/metrics.js'))}
      const thread = new CompareThread()
      setCompareHelper(thread)
      await thread.ready()
      const n = 4 * 2 ** 20
      const v = (k) => ({dtype: 'float32', shape: [n], data: new Float32Array(valuesBuffer(4 * n).buffer).fill(k)})
      const base = process.memoryUsage().rss
      let peak = 0
      for (let i = 0; i < 24; i++) {
        compareValues(v(i), v(i), {rtol: 0, atol: 0})
        peak = Math.max(peak, process.memoryUsage().rss - base)
      }
      console.log(JSON.stringify({jobs: thread.jobs, peakMiB: peak / 2 ** 20}))
    `
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', timeout: 60000})
    assert.equal(r.status, 0, r.stderr)
    const {jobs, peakMiB} = JSON.parse(r.stdout) as {jobs: number; peakMiB: number}
    assert.equal(jobs, 24)
    // ~150 MiB here; held, it is all 768
    assert.ok(peakMiB < 256, `peak ${peakMiB.toFixed(0)} MiB above the start, for 768 MiB compared`)
  })

  test('a process whose compare thread is started and idle exits on its own, promptly', () => {
    const script = `
      import {CompareThread} from ${JSON.stringify(path.join(HERE, '../../../src/app/compare-thread.js'))}
      import {compareValues, setCompareHelper} from ${JSON.stringify(path.join(HERE, '../../../src/core/metrics.js'))}
      const thread = new CompareThread()
      setCompareHelper(thread)
      const n = 1 << 20
      const v = () => ({dtype: 'float32', shape: [n], data: new Float32Array(new SharedArrayBuffer(4 * n)).fill(1)})
      compareValues(v(), v(), {rtol: 0, atol: 0}) // starts the worker
      thread.ready().then((up) => { const m = compareValues(v(), v(), {rtol: 0, atol: 0}); console.log(up, m.count, thread.jobs) })
    `
    const t0 = Date.now()
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', timeout: 20000})
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), `true ${1 << 20} 1`, 'the worker was up and took the second compare')
    assert.ok(Date.now() - t0 < 10000, `took ${Date.now() - t0} ms`)
  })
})
