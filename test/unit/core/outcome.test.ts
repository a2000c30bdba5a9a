// compareOutcomes, summary statistics, Welch's interval and Student t quantiles.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {compareOutcomes, summarize, tQuantile, welch, normalQuantile} from '../../../src/core/outcome.js'
import type {RunOutcome} from '../../../src/core/types.js'

function outcome(acc: number, loss = 0.52): RunOutcome {
  return {
    status: 'ok',
    error: null,
    workload: 'mlp',
    outcome_metric: 'val_accuracy',
    alerts: [],
    attention_path: null,
    knobs_effective: {device: 'cpu'},
    steps: 52,
    module_types: {},
    epochs: [
      {epoch: 0, train_loss: 0.9, val_loss: 0.77, val_accuracy: 0.71, seconds: 0.4, last_step: 25},
      {epoch: 1, train_loss: 0.5, val_loss: loss, val_accuracy: acc, seconds: 0.5, last_step: 51},
    ],
    final: {val_accuracy: acc, val_loss: loss, train_loss: 0.5},
    timings: {total_seconds: 3},
  }
}

const close = (x: number | null | undefined, y: number, eps: number): void => {
  assert.ok(x !== null && x !== undefined && Math.abs(x - y) <= eps, `${x} vs ${y}`)
}

describe('compareOutcomes', () => {
  test('identical outcomes (timings ignored)', () => {
    const b = outcome(0.81)
    b.timings.total_seconds = 9
    b.epochs[0]!.seconds = 7
    const r = compareOutcomes(outcome(0.81), b)
    assert.equal(r.identical, true)
    assert.equal(r.final.val_accuracy.delta, 0)
  })
  test('deltas are b - a, per epoch too', () => {
    const r = compareOutcomes(outcome(0.81, 0.5), outcome(0.79, 0.55))
    assert.equal(r.identical, false)
    close(r.final.val_accuracy.delta, -0.02, 1e-12)
    close(r.final.val_loss.delta, 0.05, 1e-12)
    assert.equal(r.epochs.length, 2)
    assert.equal(r.epochs[0]!.val_accuracy.delta, 0)
    close(r.epochs[1]!.val_accuracy.delta, -0.02, 1e-12)
  })
  test('missing epochs and nulls', () => {
    const b = outcome(0.81)
    b.epochs.pop()
    b.final.val_loss = null
    const r = compareOutcomes(outcome(0.81), b)
    assert.equal(r.identical, false)
    assert.equal(r.epochs[1]!.val_accuracy.b, null)
    assert.equal(r.epochs[1]!.val_accuracy.delta, null)
    assert.equal(r.final.val_loss.delta, null)
  })
})

describe('statistics', () => {
  test('summarize', () => {
    const s = summarize([2, 4, 4, 4, 5, 5, 7, 9])
    assert.equal(s.n, 8)
    assert.equal(s.mean, 5)
    close(s.sd, Math.sqrt(32 / 7), 1e-12)
    assert.equal(s.min, 2)
    assert.equal(s.max, 9)
    assert.deepEqual(summarize([]), {n: 0, mean: null, sd: null, min: null, max: null})
    assert.equal(summarize([3]).sd, null)
  })

  test('welch matches scipy', () => {
    // Wikipedia "Welch's t-test" example samples A1/A2. Reference: scipy 1.17.1
    // stats.ttest_ind(b, a, equal_var=False): t = 2.455356398286006, p = 0.021378001462866992,
    // df = 24.988529290231416, confidence_interval(0.95) = (0.3492370661924069, 3.984096267140929).
    const a = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    const b = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    const w = welch(a, b)
    close(w.diff, 2.166666666666668, 1e-12)
    close(w.df, 24.988529290231416, 1e-9)
    close(w.t, 2.455356398286006, 1e-9)
    close(w.p_value, 0.021378001462866992, 1e-9)
    close(w.ci95![0], 0.3492370661924069, 1e-8)
    close(w.ci95![1], 3.984096267140929, 1e-8)
    assert.equal(w.significant, true)
    const flipped = welch(b, a)
    close(flipped.diff, -2.166666666666668, 1e-12)
    assert.equal(flipped.significant, true)
  })

  test('welch edge cases', () => {
    const small = welch([1], [2, 3])
    assert.equal(small.diff, 1.5)
    assert.equal(small.ci95, null)
    assert.equal(small.significant, false)
    assert.equal(welch([], [1, 2]).diff, null)
    const constant = welch([1, 1, 1], [1, 1])
    assert.deepEqual(constant.ci95, [0, 0])
    assert.equal(constant.significant, false)
    const shifted = welch([1, 1, 1], [2, 2])
    assert.equal(shifted.se, 0)
    assert.equal(shifted.significant, true)
    const oneConstant = welch([1, 1, 1], [1, 2, 3])
    assert.equal(oneConstant.df, 2)
    assert.equal(oneConstant.significant, false)
  })

  test('t quantiles against tables (and scipy to 1e-9)', () => {
    const table: [number, number, number][] = [
      // df, scipy stats.t.ppf(0.975, df), textbook value
      [1, 12.706204736174694, 12.706],
      [2, 4.302652729749462, 4.303],
      [5, 2.5705818356363146, 2.571],
      [10, 2.228138851986274, 2.228],
      [30, 2.0422724563012378, 2.042],
      [100, 1.9839715185235518, 1.984],
      [2.5, 3.5746548420036817, 3.575],
      [1500, 1.9615467538950184, 1.962],
      [1e6, 1.959966356814107, 1.96],
    ]
    for (const [df, exact, book] of table) {
      const q = tQuantile(0.975, df)
      assert.ok(Math.abs(q - book) < 1e-3, `df=${df}: ${q}`)
      assert.ok(Math.abs(q - exact) < 1e-9 * exact, `df=${df}: ${q} vs ${exact}`)
      assert.equal(tQuantile(0.025, df), -q)
    }
    // scipy stats.t.ppf(0.995, df)
    close(tQuantile(0.995, 1), 63.656741162871526, 1e-7)
    close(tQuantile(0.995, 10), 3.16927267261695, 1e-9)
    close(tQuantile(0.995, 1500), 2.579110932109593, 1e-9)
    assert.equal(tQuantile(0.5, 3), 0)
    close(tQuantile(0.975, Infinity), 1.959963984540054, 1e-8)
    close(normalQuantile(0.001), -3.090232306167813, 1e-8)
  })
})
