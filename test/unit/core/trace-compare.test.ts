// compareTraces: step/entry alignment, first divergence, stored-value metrics, missing entries.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {compareTraces, entryPhase} from '../../../src/core/trace-compare.js'
import {
  DEFAULT_FP32_TOLERANCE,
  DEFAULT_FP64_TOLERANCE,
  storedKey,
  type StepId,
  type TensorValues,
  type Trace,
  type TraceEntry,
} from '../../../src/core/types.js'

const OPTS = {fp32: DEFAULT_FP32_TOLERANCE, fp64: DEFAULT_FP64_TOLERANCE}
const NAMES = ['fwd/mlp.0', 'loss', 'grad/x', 'param/x', 'buffer/bn.running_mean']

function entry(name: string, sha = `h-${name}`): TraceEntry {
  return {name, dtype: name === 'loss' ? 'float64' : 'float32', shape: name === 'loss' ? [] : [2], sha256: sha, nonfinite: 0}
}

function trace(override: (step: StepId, e: TraceEntry) => TraceEntry | null = (_s, e) => e): Trace {
  const steps: Trace['steps'] = [{step: 'init', epoch: null, stored: true, entries: [entry('param/x')]}]
  for (const s of [0, 1, 2]) {
    const entries = NAMES.map((n) => override(s, entry(n, `h-${s}-${n}`))).filter((e): e is TraceEntry => e !== null)
    steps.push({step: s, epoch: 0, stored: s !== 2, entries})
  }
  return {steps}
}

const none = new Map<string, TensorValues>()
const f32 = (...v: number[]): TensorValues => ({dtype: 'float32', shape: [v.length], data: Float32Array.from(v)})

test('entryPhase', () => {
  assert.equal(entryPhase('fwd/emb.0'), 'forward')
  assert.equal(entryPhase('loss'), 'loss')
  assert.equal(entryPhase('grad/mlp.0.weight'), 'backward')
  assert.equal(entryPhase('param/mlp.0.weight'), 'update')
  assert.equal(entryPhase('buffer/bn.num_batches_tracked'), 'buffer')
  assert.equal(entryPhase('weird'), 'other')
})

describe('compareTraces', () => {
  test('identical traces', () => {
    const r = compareTraces(trace(), none, trace(), none, OPTS)
    assert.equal(r.bitwise_identical, true)
    assert.equal(r.first_divergence, null)
    assert.equal(r.counts.entries, 16)
    assert.equal(r.counts.identical, 16)
    assert.equal(r.differing.length, 0)
    assert.deepEqual(
      r.steps.map((s) => s.step),
      ['init', 0, 1, 2],
    )
    assert.deepEqual(
      r.steps.map((s) => s.stored),
      [true, true, true, false],
    )
    const w = r.worst.find((x) => x.name === 'param/x')!
    assert.equal(w.occurrences, 4)
    assert.equal(w.max_rel_l2, 0)
  })

  test('one differing digest at step 1 grad/x', () => {
    const b = trace((s, e) => (s === 1 && e.name === 'grad/x' ? {...e, sha256: 'other'} : e))
    const r = compareTraces(trace(), none, b, none, OPTS)
    assert.equal(r.bitwise_identical, false)
    assert.deepEqual(r.first_divergence, {step: 1, entry: 'grad/x', index_in_step: 2, kind: 'value', phase: 'backward'})
    assert.equal(r.counts.differing, 1)
    assert.equal(r.counts.differing_with_values, 0)
    assert.equal(r.differing[0]!.metrics, null)
    assert.deepEqual(
      r.steps.map((s) => s.differing),
      [0, 0, 1, 0],
    )
    const w = r.worst.find((x) => x.name === 'grad/x')!
    assert.equal(w.differing, 1)
    assert.equal(w.max_rel_l2, 0, 'identical at the other steps, magnitude unknown at step 1')
  })

  test('stored values attach metrics (b compared against a)', () => {
    const b = trace((s, e) => (s !== 'init' && s >= 1 && (e.name === 'grad/x' || e.name === 'loss') ? {...e, sha256: 'other'} : e))
    const av = new Map([
      [storedKey(1, 'grad/x'), f32(1, 2)],
      [storedKey(1, 'loss'), {dtype: 'float64', shape: [], data: Float64Array.from([0.5])} as TensorValues],
    ])
    const bv = new Map([
      [storedKey(1, 'grad/x'), f32(1, 2.5)],
      [storedKey(1, 'loss'), {dtype: 'float64', shape: [], data: Float64Array.from([0.5 + 1e-9])} as TensorValues],
    ])
    const r = compareTraces(trace(), av, b, bv, OPTS)
    assert.deepEqual(r.first_divergence, {step: 1, entry: 'loss', index_in_step: 1, kind: 'value', phase: 'loss'})
    const grad = r.differing.find((d) => d.step === 1 && d.name === 'grad/x')!
    assert.ok(grad.metrics)
    assert.equal(grad.metrics.max_abs, 0.5)
    assert.equal(grad.metrics.within_tolerance, false)
    // loss is float64: fp64 tolerance (atol 1e-7) accepts a 1e-9 difference
    const loss = r.differing.find((d) => d.step === 1 && d.name === 'loss')!
    assert.equal(loss.metrics!.within_tolerance, true)
    assert.equal(r.counts.differing, 4) // steps 1 and 2, two entries each
    assert.equal(r.counts.differing_with_values, 2)
    assert.equal(r.counts.beyond_tolerance, 1)
    const w = r.worst.find((x) => x.name === 'grad/x')!
    assert.ok(Math.abs(w.max_rel_l2! - 0.5 / Math.sqrt(5)) < 1e-12)
    assert.equal(w.max_rel_l2_step, 1)
    assert.equal(w.max_abs, 0.5)
    assert.equal(w.differing, 2)
    assert.equal(w.beyond_tolerance, 1)
  })

  test('identical digests never look at values', () => {
    const av = new Map([[storedKey(0, 'grad/x'), f32(1)]])
    const bv = new Map([[storedKey(0, 'grad/x'), f32(2)]])
    const r = compareTraces(trace(), av, trace(), bv, OPTS)
    assert.equal(r.bitwise_identical, true)
  })

  test('missing entries on either side', () => {
    const b = trace((s, e) => (s === 0 && e.name === 'fwd/mlp.0' ? null : e))
    b.steps[1]!.entries.push(entry('buffer/extra'))
    const r = compareTraces(trace(), none, b, none, OPTS)
    assert.deepEqual(r.first_divergence, {step: 0, entry: 'fwd/mlp.0', index_in_step: 0, kind: 'missing', phase: 'forward'})
    assert.equal(r.counts.missing_in_b, 1)
    assert.equal(r.counts.missing_in_a, 1)
    const extra = r.differing.find((d) => d.name === 'buffer/extra')!
    assert.equal(extra.kind, 'missing_in_a')
    assert.equal(extra.index_in_step, 5)
    assert.equal(r.steps[1]!.entries, 6)
    assert.equal(r.steps[1]!.differing, 2)
  })

  test('dtype/shape change is a shape divergence; steps align by id', () => {
    const b = trace((s, e) => (s === 0 && e.name === 'param/x' ? {...e, shape: [3]} : e))
    b.steps.reverse()
    const r = compareTraces(trace(), none, b, none, OPTS)
    assert.deepEqual(
      r.steps.map((s) => s.step),
      ['init', 0, 1, 2],
    )
    assert.equal(r.first_divergence!.kind, 'shape')
    assert.equal(r.first_divergence!.phase, 'update')
    assert.equal(r.counts.shape, 1)
    assert.equal(r.counts.beyond_tolerance, 1)
  })

  test('a step present in only one trace', () => {
    const b = trace()
    b.steps.push({step: 3, epoch: 1, stored: false, entries: [entry('loss')]})
    const r = compareTraces(trace(), none, b, none, OPTS)
    assert.deepEqual(r.first_divergence, {step: 3, entry: 'loss', index_in_step: 0, kind: 'missing', phase: 'loss'})
    assert.equal(r.steps.at(-1)!.epoch, 1)
  })
})

describe('a compiled run (capture: boundaries) against an eager one', () => {
  const step = (s: StepId, entries: TraceEntry[]) => ({step: s, epoch: 0, stored: s === 0, entries})
  const eager: Trace = {
    steps: [0, 1].map((s) =>
      step(
        s,
        ['fwd/a', 'fwd/b', 'out', 'loss'].map((n) => entry(n, `h-${s}-${n}`)),
      ),
    ),
  }
  // the compiled program keeps only its output and loss; at the stored step 0 an eager replay of each layer
  const compiled: Trace = {
    capture: 'boundaries',
    steps: [
      step(0, [entry('replay/fwd/a', 'h-0-fwd/a'), entry('replay/fwd/b', 'h-0-fwd/b'), entry('out', 'fused'), entry('loss', 'fused-loss')]),
      step(1, [entry('out', 'fused-1'), entry('loss', 'fused-loss-1')]),
    ],
  }
  test('the replayed layers line up with the eager layers and agree; the compiled output is the first difference', () => {
    const c = compareTraces(eager, none, compiled, none, OPTS)
    assert.deepEqual([c.first_divergence!.step, c.first_divergence!.entry, c.first_divergence!.phase], [0, 'out', 'forward'])
    assert.equal(c.counts.identical, 2, 'fwd/a and fwd/b against their replays')
    assert.equal(c.counts.not_recorded, 2, 'the compiled run has no layer outputs at step 1: not recorded, not missing')
    assert.equal(c.counts.missing_in_a + c.counts.missing_in_b, 0)
  })
  test('an aliased replay is measured with its own stored values', () => {
    const av = new Map([[storedKey(0, 'fwd/a'), f32(1, 2)]])
    const bv = new Map([[storedKey(0, 'replay/fwd/a'), f32(1, 2.5)]])
    const changed: Trace = {
      ...compiled,
      steps: compiled.steps.map((s) => ({...s, entries: s.entries.map((e) => (e.name === 'replay/fwd/a' ? {...e, sha256: 'other'} : e))})),
    }
    const c = compareTraces(eager, av, changed, bv, OPTS)
    const a = c.differing.find((d) => d.name === 'fwd/a')!
    assert.equal(a.metrics!.max_abs, 0.5)
  })
})
