// The explain stage's reruns and replays share the audit's --jobs through one limiter; progress
// shows every run in flight.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {limiter} from '../../../src/app/pool.js'
import {stderrProgress} from '../../../src/app/progress.js'

describe('limiter', () => {
  test('at most n at once, the rest in call order, every result returned', async () => {
    const limit = limiter(2)
    let running = 0
    let most = 0
    const started: number[] = []
    const gates: (() => void)[] = []
    const work = (i: number) =>
      limit(async () => {
        started.push(i)
        running++
        most = Math.max(most, running)
        await new Promise<void>((resolve) => gates.push(resolve))
        running--
        return i * 10
      })
    const all = Promise.all([0, 1, 2, 3, 4].map(work))
    while (gates.length < 2) await new Promise((r) => setImmediate(r))
    assert.deepEqual(started, [0, 1], 'two start, three wait')
    // release them one by one: each release lets exactly the next waiting call in
    for (let k = 0; k < 5; k++) {
      while (gates.length === 0) await new Promise((r) => setImmediate(r))
      gates.shift()!()
      await new Promise((r) => setImmediate(r))
    }
    assert.deepEqual(await all, [0, 10, 20, 30, 40])
    assert.equal(most, 2)
    assert.deepEqual(started, [0, 1, 2, 3, 4])
  })

  test('a failing call frees its slot', async () => {
    const limit = limiter(1)
    await assert.rejects(
      limit(() => Promise.reject(new Error('boom'))),
      /boom/,
    )
    assert.equal(await limit(async () => 'next'), 'next')
  })
})

describe('progress with runs side by side', () => {
  test('a run that ends prints its line and the status line goes on with the one still running', () => {
    const written: string[] = []
    const write = process.stderr.write
    process.stderr.write = ((chunk: string) => {
      written.push(String(chunk))
      return true
    }) as typeof process.stderr.write
    try {
      const p = stderrProgress(true)
      p.start('explain e1: #2 with threads=1')
      p.start('explain e2: #2 with interop_threads=1')
      assert.match(written.at(-1)!, /… explain e2: #2 with interop_threads=1 \(\+1 more\)/)
      const before = written.length
      p.done('explain e1: #2 with threads=1', 2.5)
      const afterDone = written.slice(before).join('')
      assert.match(afterDone, /✓ explain e1: #2 with threads=1 · 2\.5 s\n/)
      assert.match(written.at(-1)!, /… explain e2: #2 with interop_threads=1 · \d+ s/)
      assert.doesNotMatch(written.at(-1)!, /more/)
      p.fail('explain e2: #2 with interop_threads=1', 'timed out')
      assert.match(written.join(''), /✗ explain e2: #2 with interop_threads=1: timed out/)
      p.close()
    } finally {
      process.stderr.write = write
    }
  })
})
