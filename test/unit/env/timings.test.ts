// REPRO_TIMINGS (src/env/timings.ts): off by default, spans by category, overlaps counted once.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {recordedSpans, recordSpan, resetTimings, timed, timingsEnabled, timingsTable, unionMs} from '../../../src/env/timings.js'

describe('timings', () => {
  test('off unless REPRO_TIMINGS=1: nothing is recorded', async () => {
    if (process.env['REPRO_TIMINGS'] !== '1') assert.equal(timingsEnabled(), false)
    resetTimings(false)
    assert.equal(await timed('git', 'state', async () => 7), 7)
    assert.deepEqual(recordedSpans(), [])
  })

  test('the union of overlapping spans counts them once', () => {
    assert.equal(unionMs([]), 0)
    assert.equal(
      unionMs([
        {start: 0, end: 10},
        {start: 5, end: 15},
        {start: 20, end: 25},
      ]),
      20,
    )
  })

  test('the table: a row per category in order of start, wall, calls and the uncovered rest', async () => {
    resetTimings(true)
    try {
      recordSpan('module loading', '@oclif/core', 0, 100)
      recordSpan('engine', 'docker version', 120, 160)
      recordSpan('engine', 'docker image inspect', 150, 200)
      await assert.rejects(timed('git', 'state', () => Promise.reject(new Error('no'))))
      assert.equal(recordedSpans().length, 4, 'a span that threw is recorded too')
      const table = timingsTable(
        recordedSpans().filter((s) => s.category !== 'git'),
        250,
      )
      const rows = table.split('\n')
      assert.match(rows[2]!, /^\s+module loading\s+0\s+100\s+1\s+100$/)
      assert.match(rows[3]!, /^\s+engine\s+120\s+80\s+2\s+90$/)
      assert.match(table, /\(not in a phase above\)\s+70/)
      assert.match(table, /total \(process start to now\)\s+250/)
      assert.match(table, /engine: docker version 40, docker image inspect 50/)
    } finally {
      resetTimings(false)
    }
  })
})
