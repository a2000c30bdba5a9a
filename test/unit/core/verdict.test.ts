import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {replicaNotes} from '../../../src/core/distributed.js'
import {decideVerdict} from '../../../src/core/report.js'
import {sampleReport} from '../report/sample.js'

describe('the verdict', () => {
  test('one target run once claims nothing about reproducibility (it used to say "bitwise reproducible: 0 comparison(s)")', () => {
    const ok = sampleReport().targets.find((t) => t.status === 'ok')!
    const v = decideVerdict([ok], [])
    assert.equal(v.exit_code, 0)
    assert.match(v.headline, /^ran, nothing compared: 1 target\(s\), one run each — add --repeats 2/)
    assert.doesNotMatch(v.headline, /bitwise/)
  })
})

describe('the verdict with repeats that differ', () => {
  const report = sampleReport()
  const ok = report.targets.filter((t) => t.status === 'ok').slice(0, 2)
  const template = report.comparisons.find((c) => !c.divergence.bitwise_identical)!
  const pair = (role: 'repeat' | 'cross', a: number, b: number, bitwise: boolean, noise?: {within: number; beyond: number}) => ({
    ...structuredClone(template),
    role,
    a: {target: a, repeat: 1, name: `#${a} r1`},
    b: {target: b, repeat: role === 'repeat' ? 2 : 1, name: `#${b} r${role === 'repeat' ? 2 : 1}`},
    divergence: {
      ...structuredClone(template.divergence),
      bitwise_identical: bitwise,
      first_divergence: bitwise ? null : {step: 0, entry: 'fwd/net.0', index_in_step: 0, kind: 'value' as const, phase: 'forward' as const},
    },
    ...(noise ? {noise} : {}),
  })

  test('one target whose repeats differ: exit 1, not reproducible within a target', () => {
    const v = decideVerdict([ok[0]!], [pair('repeat', 1, 1, false)])
    assert.deepEqual([v.status, v.exit_code], ['drift', 1])
    assert.match(v.headline, /^not reproducible within a target: #1 r1 vs #1 r2 first diverge at step 0, fwd\/net\.0/)
  })

  test('the same noisy target given twice keeps that verdict (it said "reproducible within noise", exit 0)', () => {
    const v = decideVerdict(ok, [
      pair('repeat', 1, 1, false),
      pair('repeat', 2, 2, false),
      pair('cross', 1, 2, false, {within: 60, beyond: 0}),
    ])
    assert.deepEqual([v.status, v.exit_code], ['drift', 1])
    assert.match(v.headline, /^not reproducible within a target: #1 r1 vs #1 r2 first diverge at step 0/)
    assert.match(v.headline, /every cross-target difference stays within that noise \(2 repeat pair\(s\) differ\)/)
  })

  test('bitwise repeats and a cross difference: drift between targets', () => {
    const v = decideVerdict(ok, [pair('repeat', 1, 1, true), pair('repeat', 2, 2, true), pair('cross', 1, 2, false)])
    assert.deepEqual([v.status, v.exit_code], ['drift', 1])
    assert.match(v.headline, /^drift between targets: #1 r1 vs #2 r1/)
  })
})

describe('the verdict with data-parallel runs (the replica check)', () => {
  const report = sampleReport()
  const ok = report.targets.filter((t) => t.status === 'ok').slice(0, 1)
  const same = report.comparisons.find((c) => c.divergence.bitwise_identical) ?? report.comparisons[0]!
  const bitwise = {
    ...structuredClone(same),
    role: 'repeat' as const,
    divergence: {...structuredClone(same.divergence), bitwise_identical: true, first_divergence: null},
  }
  const withReplicas = (drift: {rank: number; step: number | 'end'} | null) =>
    ok.map((t) => ({
      ...structuredClone(t),
      runs: t.runs.map((r) => ({
        ...r,
        distributed: {world_size: 2, backend: 'gloo' as const, replicas: {checked: [0, 1, 'end' as const], drift}},
      })),
    }))

  test('ranks that agree: bitwise reproducible, and the note says the replicas agree', () => {
    const targets = withReplicas(null)
    assert.equal(decideVerdict(targets, [bitwise]).exit_code, 0)
    const notes = replicaNotes({targets})
    assert.equal(notes.length, 1)
    assert.equal(notes[0]!.drift, false)
    assert.match(notes[0]!.text, /world size 2 \(gloo\): replicas agree/)
  })

  test('a rank whose parameters part from rank 0 makes bitwise repeats "not reproducible within a target", naming rank and step', () => {
    const v = decideVerdict(withReplicas({rank: 1, step: 3}), [bitwise])
    assert.deepEqual([v.status, v.exit_code], ['drift', 1])
    assert.match(v.headline, /not reproducible within a target: #\d+ world size 2 \(gloo\): replica check failed .*rank 1 at step 3/)
  })
})
