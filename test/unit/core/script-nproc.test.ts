// A script audited at two world sizes (--script-nproc): each rank feeds its own slice of the data,
// so only the state entries (grad/, param/, buffer/, opt/) are compared, and the report says so.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {acrossWorldSizes, replicaNotes, scriptWorldSizesNote} from '../../../src/core/distributed.js'
import {comparePair} from '../../../src/core/pairs.js'
import {compareTraces, isStateEntry} from '../../../src/core/trace-compare.js'
import {
  DEFAULT_FP32_TOLERANCE,
  DEFAULT_FP64_TOLERANCE,
  type DistributedInfo,
  type RunArtifacts,
  type RunOutcome,
  type TensorValues,
  type Trace,
} from '../../../src/core/types.js'

const OPTS = {fp32: DEFAULT_FP32_TOLERANCE, fp64: DEFAULT_FP64_TOLERANCE}
const NAMES = ['fwd/0', 'out', 'loss', 'grad/0.weight', 'param/0.weight', 'buffer/bn.running_mean', 'opt/0.weight.momentum']
const none = new Map<string, TensorValues>()

/** One step; the per-rank entries (forward outputs, out, loss) carry `rank` in their digest. */
function trace(rank: string): Trace {
  const entries = NAMES.map((name) => ({
    name,
    dtype: 'float32' as const,
    shape: [2],
    sha256: isStateEntry(name) ? `h-${name}` : `h-${rank}-${name}`,
    nonfinite: 0,
  }))
  return {steps: [{step: 0, epoch: null, stored: false, entries}]}
}

const ddp = (world_size: number): DistributedInfo => ({world_size, backend: 'gloo', replicas: {checked: ['end'], drift: null}})

function run(worldSize: number, script = true): RunArtifacts {
  const outcome = {
    status: 'ok',
    error: null,
    workload: script ? null : 'mlp',
    outcome_metric: null,
    knobs_effective: {},
    steps: 1,
    module_types: {},
    epochs: [],
    final: {val_accuracy: null, val_loss: null, train_loss: 1},
    timings: {},
    alerts: [],
    attention_path: null,
    ...(script ? {script: {argv: ['train.py']}} : {}),
    ...(worldSize > 1 ? {distributed: ddp(worldSize)} : {}),
  } satisfies RunOutcome
  return {label: `ws${worldSize}`, fingerprint: {}, outcome, trace: trace(`ws${worldSize}`), values: none}
}

describe('a script at two world sizes', () => {
  test('isStateEntry: gradients, parameters, buffers and optimizer state', () => {
    assert.deepEqual(NAMES.filter(isStateEntry), ['grad/0.weight', 'param/0.weight', 'buffer/bn.running_mean', 'opt/0.weight.momentum'])
  })

  test('compareTraces with `only` neither counts nor reports the other entries', () => {
    const all = compareTraces(trace('a'), none, trace('b'), none, OPTS)
    assert.equal(all.first_divergence?.entry, 'fwd/0')
    const state = compareTraces(trace('a'), none, trace('b'), none, {...OPTS, only: isStateEntry})
    assert.equal(state.bitwise_identical, true)
    assert.equal(state.counts.entries, 4)
    assert.deepEqual(
      state.worst.map((w) => w.name),
      NAMES.filter(isStateEntry),
    )
  })

  test('only script runs at different world sizes compare the state alone', () => {
    assert.equal(acrossWorldSizes(run(1).outcome, run(2).outcome), true)
    assert.equal(acrossWorldSizes(run(2).outcome, run(2).outcome), false)
    assert.equal(acrossWorldSizes(run(1, false).outcome, run(2, false).outcome), false) // the built-in workloads gather every rank's outputs
    const ref = (n: number) => ({target: n, repeat: 1, name: `#${n}`})
    assert.equal(comparePair('cross', ref(1), run(1), ref(2), run(2)).record.divergence.bitwise_identical, true)
    assert.equal(comparePair('cross', ref(1), run(1, false), ref(2), run(2, false)).record.divergence.bitwise_identical, false)
    // the same world size: every entry is compared (the per-rank ones differ here by construction)
    const two = {...run(2), trace: trace('other')}
    assert.equal(comparePair('repeat', ref(1), run(2), ref(1), two).cmp.first_divergence?.entry, 'fwd/0')
  })

  test('the report says so once, and a script replica check is "at the end"', () => {
    const targets = [
      {index: 1, runs: [{repeat: 1, script: {}}]},
      {index: 2, runs: [{repeat: 1, script: {}, distributed: ddp(2)}]},
    ]
    assert.equal(
      scriptWorldSizesNote({targets}),
      'World sizes 1, 2: the script splits its own data: only gradients, parameters, buffers and optimizer state are compared across world sizes.',
    )
    assert.equal(scriptWorldSizesNote({targets: [targets[1]!, targets[1]!]}), null)
    assert.match(replicaNotes({targets})[0]!.text, /replicas agree .* 1 check\(s\) over 1 run\(s\) \(the end\)$/)
  })
})
