import {describe, test} from 'node:test'
import {DEFAULT_KNOBS} from '../../../src/core/knobs.js'
import assert from 'node:assert/strict'
import {
  classifyAgainstNoise,
  classifyExperiment,
  entryModule,
  knobDifferences,
  alignedKnobs,
  UNSET_ENV,
  noiseFloorOf,
  rankSuspects,
  seedVariance,
  whereItStarts,
} from '../../../src/core/attribute.js'
import type {FingerprintRow} from '../../../src/core/fingerprint-diff.js'
import type {Experiment} from '../../../src/core/report.js'
import type {FirstDivergence, TraceComparison} from '../../../src/core/trace-compare.js'

const fd = (step: 'init' | number, entry: string, index = 0): FirstDivergence => ({
  step,
  entry,
  index_in_step: index,
  kind: 'value',
  phase: entry.startsWith('fwd/') ? 'forward' : entry.startsWith('param/') ? 'update' : 'backward',
})

function cmp(first: FirstDivergence | null, differing: {name: string; max_abs: number | null}[] = []): TraceComparison {
  return {
    bitwise_identical: first === null,
    first_divergence: first,
    steps: [],
    differing: differing.map((d) => ({
      step: 0,
      name: d.name,
      index_in_step: 0,
      phase: 'forward',
      dtype: 'float32',
      kind: 'value',
      metrics: d.max_abs === null ? null : ({max_abs: d.max_abs} as never),
    })),
    counts: {
      entries: 10,
      identical: 10 - differing.length,
      differing: differing.length,
      differing_with_values: 0,
      beyond_tolerance: 0,
      shape: 0,
      missing_in_a: 0,
      missing_in_b: 0,
    },
    worst: [],
  } as TraceComparison
}

const row = (path: string, a: string, b: string, group: FingerprintRow['group']): FingerprintRow => ({
  group,
  path,
  a,
  b,
  changed: true,
  change: 'changed',
})

describe('attribution', () => {
  test('knob differences: every alignable knob (amp too) and allowlisted env vars, where the reference has a value', () => {
    const d = knobDifferences(
      {threads: 1, deterministic: false, tf32_matmul: null, amp: 'off'},
      {threads: 2, deterministic: false, tf32_matmul: true, amp: 'bf16'},
      {OMP_NUM_THREADS: '1', PYTHONHASHSEED: '0', HOME: '/x'},
      {OMP_NUM_THREADS: '4', PYTHONHASHSEED: '1'},
    )
    // amp used to be missing here, so an amp difference was never named nor rerun (issue 18)
    assert.deepEqual(d, [
      {name: 'threads', a: 1, b: 2},
      {name: 'amp', a: 'off', b: 'bf16'},
      {name: 'env.OMP_NUM_THREADS', a: '1', b: '4'},
    ])
  })

  test("an env var only the second target has (an image's ENV) is a difference, aligned by unsetting it", () => {
    const d = knobDifferences({threads: 1}, {threads: 1}, {}, {ONEDNN_MAX_CPU_ISA: 'AVX2'})
    assert.deepEqual(d, [{name: 'env.ONEDNN_MAX_CPU_ISA', a: null, b: 'AVX2'}])
    const knobs = alignedKnobs({...DEFAULT_KNOBS, env: {OMP_NUM_THREADS: '1'}}, d)
    assert.deepEqual(knobs.env, {OMP_NUM_THREADS: '1', [UNSET_ENV]: 'ONEDNN_MAX_CPU_ISA'})
    // set by --set on b and absent in a: removed from the rerun's env and unset in the target
    const both = alignedKnobs({...DEFAULT_KNOBS, env: {DNNL_VERBOSE: '1', [UNSET_ENV]: 'ONEDNN_MAX_CPU_ISA'}}, [
      {name: 'env.DNNL_VERBOSE', a: null, b: '1'},
    ])
    assert.deepEqual(both.env, {[UNSET_ENV]: 'DNNL_VERBOSE,ONEDNN_MAX_CPU_ISA'})
  })

  test('experiment outcome: disappears, moves later (step, then position), stays', () => {
    const before = fd(0, 'fwd/mlp.1', 3)
    assert.equal(classifyExperiment(before, cmp(null)), 'disappears')
    assert.equal(classifyExperiment(before, cmp(fd(1, 'param/mlp.0.weight', 0))), 'moves-later')
    assert.equal(classifyExperiment(before, cmp(fd(0, 'grad/mlp.0.weight', 7))), 'moves-later')
    assert.equal(classifyExperiment(before, cmp(fd(0, 'fwd/mlp.1', 3))), 'stays')
    assert.equal(classifyExperiment(before, cmp(fd('init', 'param/mlp.0.weight', 0))), 'stays')
  })

  test('noise floor: bitwise repeats have no spread; noisy entries keep their largest difference', () => {
    assert.deepEqual(noiseFloorOf(1, 'a', [cmp(null)]).spread, [])
    const f = noiseFloorOf(2, 'b', [
      cmp(fd(0, 'grad/emb.0.weight'), [{name: 'grad/emb.0.weight', max_abs: 1e-6}]),
      cmp(fd(0, 'grad/emb.0.weight'), [
        {name: 'grad/emb.0.weight', max_abs: 3e-6},
        {name: 'param/emb.0.weight', max_abs: null},
      ]),
    ])
    assert.equal(f.bitwise, false)
    assert.equal(f.repeats, 3)
    assert.deepEqual(f.spread, [
      {name: 'grad/emb.0.weight', max_abs: 3e-6},
      {name: 'param/emb.0.weight', max_abs: Infinity},
    ])
  })

  test('cross drift is classified against the noise floor entry by entry', () => {
    const floor = noiseFloorOf(1, 'a', [cmp(fd(0, 'grad/emb.0.weight'), [{name: 'grad/emb.0.weight', max_abs: 1e-5}])])
    const cross = cmp(fd(0, 'grad/emb.0.weight'), [
      {name: 'grad/emb.0.weight', max_abs: 5e-6}, // within: smaller than the repeat spread
      {name: 'grad/emb.0.weight', max_abs: 1e-3}, // beyond: bigger
      {name: 'fwd/mlp.0', max_abs: 1e-9}, // beyond: this entry never varies between repeats
    ])
    assert.deepEqual(classifyAgainstNoise(cross, [floor]), {within: 1, beyond: 2})
  })

  test('where it starts: module and module type from the entry name', () => {
    assert.equal(entryModule('fwd/mlp.1'), 'mlp.1')
    assert.equal(entryModule('grad/mlp.0.weight'), 'mlp.0')
    assert.equal(entryModule('buffer/mlp.1.running_mean'), 'mlp.1')
    assert.equal(entryModule('fwd/emb.0#1'), 'emb.0')
    assert.equal(entryModule('loss'), null)
    assert.deepEqual(whereItStarts(fd(0, 'fwd/mlp.1'), {'mlp.1': 'BatchNorm1d'}), {
      phase: 'forward',
      module_type: 'BatchNorm1d',
      step: 0,
      entry: 'fwd/mlp.1',
    })
  })

  test('seed variance: a difference inside the seed spread is judged within variance', () => {
    const s = seedVariance(
      [1, 2, 3],
      [
        {target: 1, name: 'a', accuracies: [0.9, 0.92, 0.91], losses: [0.3, 0.31, 0.29]},
        {target: 2, name: 'b', accuracies: [0.91, 0.9, 0.92], losses: [0.3, 0.3, 0.3]},
        {target: 3, name: 'c', accuracies: [0.7, 0.71, 0.69], losses: [0.6, 0.6, 0.6]},
      ],
    )
    assert.equal(s.differences[0]!.significant, false)
    assert.match(s.differences[0]!.sentence, /within seed-to-seed variance/)
    assert.equal(s.differences[1]!.significant, true)
    assert.match(s.differences[1]!.sentence, /bigger than the seed-to-seed spread/)
    assert.equal(s.per_target[0]!.accuracy.mean?.toFixed(3), '0.910')
  })

  const exp = (knobs: string[], outcome: Experiment['outcome'], after: FirstDivergence | null = null): Experiment => ({
    id: 'e',
    knobs: knobs.map((name) => ({name, from: 2, to: 1})),
    target: 2,
    against: 1,
    outcome,
    first_divergence_before: {step: 0, entry: 'fwd/mlp.1'},
    first_divergence_after: after ? {step: after.step, entry: after.entry} : null,
    note: '',
  })
  const libs = [
    row('torch.version', '1.13.0', '2.6.0', 'framework'),
    row('torch.config.onednn', 'v2.6.3', 'v3.7.2', 'cpu_math'),
    row('python.version', '3.11', '3.13', 'system'),
  ]

  test('a knob whose rerun makes the drift disappear is the top suspect with high confidence; no library blamed', () => {
    const s = rankSuspects({
      experiments: [exp(['threads'], 'disappears'), exp(['deterministic'], 'stays')],
      where: whereItStarts(fd(0, 'fwd/mlp.1'), {}),
      fingerprintChanges: libs,
      noiseFloors: [],
      seeds: null,
      drift: true,
    })
    assert.equal(s[0]!.name, 'threads')
    assert.equal(s[0]!.confidence, 'high')
    assert.match(s[0]!.evidence, /bitwise identical/)
    assert.ok(s[0]!.source?.startsWith('https://'))
    assert.ok(!s.some((x) => x.kind === 'library'))
  })

  test('a knob that explains part, then library versions for the rest, ranked by where the rest starts', () => {
    const residual = whereItStarts(fd(1, 'param/mlp.0.weight'), {'mlp.0': 'Linear'})
    const s = rankSuspects({
      experiments: [exp(['threads'], 'moves-later', fd(1, 'param/mlp.0.weight'))],
      where: whereItStarts(fd(0, 'fwd/mlp.1'), {}),
      residual,
      fingerprintChanges: libs,
      noiseFloors: [],
      seeds: null,
      drift: true,
    })
    assert.deepEqual(
      s.map((x) => [x.kind, x.name]),
      [
        ['knob', 'threads'],
        ['library', 'torch.version'],
        ['library', 'torch.config.onednn'],
      ],
    )
    assert.equal(s[0]!.confidence, 'medium')
    assert.match(s[1]!.explanation!, /lerp_/) // 1.x → 2.x with an update-phase divergence at step 1: Adam's changed arithmetic
    assert.match(s[1]!.evidence, /remaining divergence starts in the update phase at param\/mlp\.0\.weight \(Linear\), step 1/)
  })

  test('nothing to align: library suspects only; a Linear forward points at BLAS/oneDNN first', () => {
    const s = rankSuspects({
      experiments: [],
      where: whereItStarts(fd(0, 'fwd/mlp.0'), {'mlp.0': 'Linear'}),
      fingerprintChanges: libs,
      noiseFloors: [],
      seeds: null,
      drift: true,
    })
    assert.equal(s[0]!.name, 'torch.config.onednn')
    assert.match(s[0]!.evidence, /no runtime knob differs/)
    assert.ok(!s.some((x) => x.name === 'python.version'), 'system rows are not math-library suspects')
  })

  test('a library change the workload cannot reach (SDPA for an MLP) is not named; for attention or a script it is', () => {
    const sdpa = [...libs, row('attention.sdpa_available', 'false', 'true', 'framework')]
    const named = (workload: string | null) =>
      rankSuspects({
        experiments: [],
        where: whereItStarts(fd(0, 'fwd/mlp.0'), {'mlp.0': 'Linear'}),
        fingerprintChanges: sdpa,
        noiseFloors: [],
        seeds: null,
        drift: true,
        workload,
      }).map((x) => x.name)
    assert.ok(!named('mlp').includes('attention.sdpa_available'))
    assert.ok(named('mlp').includes('torch.config.onednn'))
    assert.ok(named('attention').includes('attention.sdpa_available'))
    assert.ok(named(null).includes('attention.sdpa_available'), "a user's script may call SDPA from any module")
  })

  test('nondeterminism inside a target outranks cross-target explanations', () => {
    const floor = noiseFloorOf(1, '#1 gpu', [cmp(fd(0, 'grad/emb.0.weight'), [{name: 'grad/emb.0.weight', max_abs: 1e-6}])])
    const s = rankSuspects({experiments: [], where: null, fingerprintChanges: [], noiseFloors: [floor], seeds: null, drift: false})
    assert.equal(s[0]!.kind, 'nondeterminism')
    assert.match(s[0]!.explanation!, /atomicAdd/)
  })
})
