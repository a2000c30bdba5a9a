// Op replay of an update (core/replay.ts): which inputs it takes from the stored steps, when the
// drift is earlier (an input differs), how the replays are judged (fidelity first), and the
// suspect a localized replay makes (core/suspects.ts).
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {
  firstCaptureDifference,
  forwardModule,
  judgeReplay,
  planForwardReplay,
  planInitReplay,
  entryModule,
  planUpdateReplay,
  replayInputValues,
  maxAbs,
  plannedToggles,
  toggleOutcome,
  type UpdateReplayPlan,
} from '../../../src/core/replay.js'
import {rankSuspects} from '../../../src/core/suspects.js'
import type {FingerprintRow} from '../../../src/core/fingerprint-diff.js'
import type {Experiment} from '../../../src/core/report.js'
import type {FirstDivergence} from '../../../src/core/trace-compare.js'
import {DEFAULT_KNOBS} from '../../../src/core/knobs.js'
import type {RunArtifacts, TensorValues, TraceEntry, TraceStep} from '../../../src/core/types.js'

const e = (name: string, sha: string): TraceEntry => ({name, dtype: 'float32', shape: [2], sha256: sha.padEnd(64, '0'), nonfinite: 0})
const value = (x: number): TensorValues => ({dtype: 'float32', shape: [2], data: new Float32Array([x, x])})

/** A two-parameter Adam run: init, step 0, step 1 (all stored); `b` changes digests by name. */
function run(changed: Record<string, string> = {}): RunArtifacts {
  const d = (step: string | number, name: string) => changed[`${step}|${name}`] ?? `${step}${name.length}`.replace(/\D/g, 'a')
  const step = (s: number | 'init', names: string[]): TraceStep => ({
    step: s,
    epoch: null,
    stored: true,
    entries: names.map((n) => e(n, d(s, n))),
  })
  const update = ['param/w', 'opt/w.exp_avg', 'opt/w.exp_avg_sq', 'param/b', 'opt/b.exp_avg', 'opt/b.exp_avg_sq']
  const steps = [
    step('init', ['param/w', 'param/b']),
    step(0, ['out', 'loss', 'grad/w', 'grad/b', ...update]),
    step(1, ['out', 'loss', 'grad/w', 'grad/b', ...update]),
  ]
  const values = new Map<string, TensorValues>()
  for (const s of steps) for (const x of s.entries) values.set(`${s.step}|${x.name}`, value(1))
  return {label: 'r', fingerprint: {} as RunArtifacts['fingerprint'], outcome: {} as RunArtifacts['outcome'], trace: {steps}, values}
}
const fd = (step: number, entry: string, phase: FirstDivergence['phase'] = 'update'): FirstDivergence => ({
  step,
  entry,
  index_in_step: 0,
  kind: 'value',
  phase,
})
const adam = {type: 'adam', lr: 0.005}

describe('planning the replay of an update', () => {
  test('step 1: the parameters after step 0, the gradients of step 1, the optimizer state after step 0', () => {
    const b = run({'1|opt/w.exp_avg': 'ff'})
    const d = planUpdateReplay(run(), b, fd(1, 'opt/w.exp_avg'), adam)
    assert.ok('plan' in d)
    const plan = d.plan
    assert.deepEqual(plan.params, ['w', 'b'])
    assert.deepEqual(
      plan.inputs.map((i) => `${i.step}|${i.entry}`),
      ['0|param/w', '1|grad/w', '0|opt/w.exp_avg', '0|opt/w.exp_avg_sq', '0|param/b', '1|grad/b', '0|opt/b.exp_avg', '0|opt/b.exp_avg_sq'],
    )
    assert.deepEqual(Object.keys(plan.recorded.a), [
      'param/w',
      'opt/w.exp_avg',
      'opt/w.exp_avg_sq',
      'param/b',
      'opt/b.exp_avg',
      'opt/b.exp_avg_sq',
    ])
    assert.notEqual(plan.recorded.a['opt/w.exp_avg'], plan.recorded.b['opt/w.exp_avg'])
    assert.equal(replayInputValues(run(), plan)!.size, 8)
  })

  test('step 0 takes the parameters as initialized and no optimizer state', () => {
    const d = planUpdateReplay(run(), run({'0|param/w': 'ff'}), fd(0, 'param/w'), adam)
    assert.ok('plan' in d)
    assert.deepEqual(
      d.plan.inputs.map((i) => `${i.step}|${i.entry}`),
      ['init|param/w', '0|grad/w', 'init|param/b', '0|grad/b'],
    )
  })

  test('an input that already differs: no replay, the drift is earlier, and it is named', () => {
    const d = planUpdateReplay(run(), run({'1|grad/b': 'ee', '1|param/b': 'ff'}), fd(1, 'param/b'), adam)
    assert.deepEqual(d, {inputsDiffer: {step: 1, entry: 'grad/b'}})
  })

  test('nothing to replay: not an update, unstored steps, an unknown optimizer', () => {
    assert.ok('skip' in planUpdateReplay(run(), run(), fd(1, 'fwd/mlp.0', 'forward'), adam))
    const unstored = run()
    unstored.trace.steps[1]!.stored = false
    assert.ok('skip' in planUpdateReplay(unstored, run(), fd(1, 'param/w'), adam))
    assert.ok('skip' in planUpdateReplay(run(), run(), fd(1, 'param/w'), {type: 'rmsprop', lr: 1}))
  })
})

describe('judging the replays', () => {
  const plan = (): UpdateReplayPlan => {
    const d = planUpdateReplay(run(), run({'1|param/w': 'ff'}), fd(1, 'param/w'), adam)
    assert.ok('plan' in d)
    return d.plan
  }
  test('each replay reproduces its own recording and they differ: localized', () => {
    const p = plan()
    const j = judgeReplay(p, p.recorded.a, p.recorded.b)
    assert.deepEqual(j, {outcome: 'localized', differing: ['param/w'], unfaithful: []})
  })
  test('identical outputs where the recordings differ cannot be faithful to both: proves nothing', () => {
    const p = plan()
    const j = judgeReplay(p, p.recorded.a, p.recorded.a)
    assert.equal(j.outcome, 'not-faithful')
    assert.deepEqual(j.unfaithful, ['#b param/w'])
  })
  test('identical recordings replayed identically: cleared', () => {
    const p = plan()
    p.recorded.b = {...p.recorded.a}
    assert.equal(judgeReplay(p, p.recorded.a, p.recorded.a).outcome, 'cleared')
  })
})

describe('the suspect a replay makes', () => {
  const rows: FingerprintRow[] = [
    {group: 'framework', path: 'torch.version', change: 'changed', a: '1.13.0a0', b: '2.6.0+debian'} as FingerprintRow,
    {group: 'cpu_math', path: 'torch.config.onednn', change: 'changed', a: 'v2.6.3', b: 'v3.7.2'} as FingerprintRow,
  ]
  const replay = (op: string, step: number, outcome: Experiment['outcome'] = 'localized'): Experiment => ({
    id: 'e1',
    kind: 'replay',
    op,
    knobs: [],
    target: 2,
    against: 1,
    outcome,
    first_divergence_before: {step, entry: 'opt/w.exp_avg'},
    first_divergence_after: null,
    note: 'identical inputs give different outputs',
  })
  const rank = (experiments: Experiment[]) =>
    rankSuspects({
      experiments,
      where: {phase: 'update', module_type: null, step: 1, entry: 'opt/w.exp_avg'},
      fingerprintChanges: rows,
      noiseFloors: [],
      seeds: null,
      drift: true,
      workload: 'mlp',
    })

  test("Adam's update at step 1 localized across 1.x → 2.x: torch.version, high, with the sourced entry; named once", () => {
    const s = rank([replay('Adam update of step 1', 1)])
    assert.equal(s[0]!.name, 'torch.version')
    assert.equal(s[0]!.confidence, 'high')
    assert.match(s[0]!.evidence, /^e1: the Adam update of step 1 replayed on identical inputs in #1 and #2 gives different outputs/)
    assert.match(s[0]!.source ?? '', /torch\/optim\/adam\.py$/)
    assert.equal(s.filter((x) => x.name === 'torch.version').length, 1)
  })

  test('another op (SGD), or a step no sourced entry covers: medium, localized, cause not isolated', () => {
    for (const s of [rank([replay('SGD (momentum 0.9) update of step 1', 1)]), rank([replay('Adam update of step 3', 3)])]) {
      assert.equal(s[0]!.name, 'torch.version')
      assert.equal(s[0]!.confidence, 'medium')
      assert.match(s[0]!.evidence, /localized to that op, cause not isolated$/)
    }
  })

  test('a cleared or unfaithful replay makes no replay suspect', () => {
    for (const outcome of ['cleared', 'not-faithful', 'inputs-differ'] as const) {
      const s = rank([replay('Adam update of step 1', 1, outcome)])
      assert.ok(!s.some((x) => x.evidence.startsWith('e1:')), outcome)
    }
  })
})

describe('planning the replay of a forward op', () => {
  test('the module of a forward entry: tuple outputs (.0, .1.0) belong to the module; a second call (#1) is not captured', () => {
    const modules = ['lstm', 'head', 'blocks.0.norm1', 'blocks.0']
    assert.equal(forwardModule('fwd/lstm.0', modules), 'lstm')
    assert.equal(forwardModule('fwd/lstm.1.0', modules), 'lstm')
    assert.equal(forwardModule('fwd/blocks.0.norm1', modules), 'blocks.0.norm1')
    assert.equal(forwardModule('fwd/head', modules), 'head')
    assert.equal(forwardModule('fwd/head#1', modules), null)
    assert.equal(forwardModule('fwd/other', modules), null)
    assert.equal(forwardModule('grad/head.weight', modules), null)
  })

  test("the plan names the module and each side's recorded outputs at that step", () => {
    const withModules = (r: RunArtifacts) => {
      r.outcome = {module_types: {w: 'Linear'}} as unknown as RunArtifacts['outcome']
      r.trace.steps[2]!.entries.unshift(e('fwd/w', '1a'))
      return r
    }
    const a = withModules(run())
    const b = withModules(run())
    b.trace.steps[2]!.entries[0] = e('fwd/w', '2b')
    const d = planForwardReplay(a, b, fd(1, 'fwd/w', 'forward'))
    assert.ok('plan' in d)
    assert.deepEqual([d.plan.module, d.plan.step], ['w', 1])
    assert.notEqual(d.plan.recorded.a['fwd/w'], d.plan.recorded.b['fwd/w'])
    assert.ok('skip' in planForwardReplay(a, b, fd(1, 'param/w')))
  })

  test('captures compare by bytes, the RNG state aside; toggles are bitwise, closer or unchanged', () => {
    const x = [
      {name: 'arg/0', sha256: 'a'},
      {name: 'state/weight', sha256: 'b'},
      {name: 'rng/cpu', sha256: 'c'},
    ]
    assert.equal(
      firstCaptureDifference(
        x,
        x.map((y) => (y.name === 'rng/cpu' ? {...y, sha256: 'z'} : y)),
      ),
      null,
    )
    assert.equal(
      firstCaptureDifference(
        x,
        x.map((y) => (y.name === 'state/weight' ? {...y, sha256: 'z'} : y)),
      ),
      'state/weight',
    )
    assert.equal(firstCaptureDifference(x, x.slice(1)), 'arg/0')
    assert.equal(toggleOutcome(true, 1e-6, 0), 'bitwise')
    assert.equal(toggleOutcome(false, 1e-6, 1e-7), 'closer')
    assert.equal(toggleOutcome(false, 1e-6, 1e-6), 'unchanged')
  })

  test('a toggle that reconciles the replays names its library, high; without one the op is localized, medium', () => {
    const rows: FingerprintRow[] = [
      {group: 'framework', path: 'torch.version', change: 'changed', a: '1.13.0a0', b: '2.6.0+debian'} as FingerprintRow,
      {group: 'cpu_math', path: 'torch.config.cpu_capability', change: 'changed', a: 'AVX2', b: 'AVX512'} as FingerprintRow,
    ]
    const exp = (toggles: Experiment['toggles']): Experiment => ({
      id: 'e2',
      kind: 'replay',
      op: 'norm1 (LayerNorm) forward at step 0',
      knobs: [],
      target: 2,
      against: 1,
      outcome: 'localized',
      first_divergence_before: {step: 0, entry: 'fwd/norm1'},
      first_divergence_after: null,
      note: 'n',
      ...(toggles ? {toggles} : {}),
    })
    const rank = (x: Experiment) =>
      rankSuspects({
        experiments: [x],
        where: null,
        fingerprintChanges: rows,
        noiseFloors: [],
        seeds: null,
        drift: true,
        workload: 'attention',
      })
    const high = rank(
      exp([
        {toggle: 'mkldnn off', outcome: 'unchanged', max_abs: 1e-6},
        {toggle: 'ATEN_CPU_CAPABILITY=avx2', outcome: 'bitwise', max_abs: 0},
      ]),
    )
    assert.deepEqual(
      [high[0]!.name, high[0]!.confidence, high[0]!.a, high[0]!.b],
      ['torch.config.cpu_capability', 'high', 'AVX2', 'AVX512'],
    )
    assert.match(high[0]!.evidence, /replayed in #2 with ATEN_CPU_CAPABILITY=avx2 it is bitwise identical to #1$/)
    const medium = rank(exp([{toggle: 'mkldnn off', outcome: 'unchanged', max_abs: 1e-6}]))
    assert.deepEqual([medium[0]!.name, medium[0]!.confidence], ['torch.version', 'medium'])
    assert.match(medium[0]!.evidence, /cause not isolated$/)
  })
})

describe('the toggles a forward replay tries', () => {
  const withCapability = (cap: string): RunArtifacts => ({
    ...run(),
    fingerprint: {torch: {config: {cpu_capability: cap}}} as unknown as RunArtifacts['fingerprint'],
  })
  const names = (a: string, b: string) =>
    plannedToggles(withCapability(a), withCapability(b), {...DEFAULT_KNOBS, env: {}}).map((t) => t.name)

  test("an AVX-512 host, AVX2 torch vs AVX-512 torch: oneDNN off, the first target's capability, oneDNN capped at AVX2", () => {
    assert.deepEqual(names('AVX2', 'AVX512'), ['mkldnn off', 'ATEN_CPU_CAPABILITY=avx2', 'ONEDNN_MAX_CPU_ISA=AVX2'])
  })

  test('an AVX2-only host (both at AVX2): no capability toggle and no AVX-512 cap — nothing the CPU lacks is asked for', () => {
    assert.deepEqual(names('AVX2', 'AVX2'), ['mkldnn off'])
    // a capability the first target never ran is never planned (it could be a SIGILL)
    assert.ok(!names('AVX512', 'AVX2').some((n) => /avx512/i.test(n) && n.startsWith('ONEDNN')))
  })

  test('a variable the second target sets itself is not toggled over it', () => {
    const knobs = {...DEFAULT_KNOBS, env: {ATEN_CPU_CAPABILITY: 'avx512', ONEDNN_MAX_CPU_ISA: 'AVX512_CORE'}}
    assert.deepEqual(
      plannedToggles(withCapability('AVX2'), withCapability('AVX512'), knobs).map((t) => t.name),
      ['mkldnn off'],
    )
  })

  test('max |Δ| over two replays: 0 when equal, the largest difference, Infinity for a missing tensor', () => {
    const v = (x: number[]) => new Map([['fwd/m', {dtype: 'float32' as const, shape: [x.length], data: new Float32Array(x)}]])
    assert.equal(maxAbs(v([1, 2]), v([1, 2])), 0)
    assert.equal(maxAbs(v([1, 2]), v([1, 2.5])), 0.5)
    assert.equal(maxAbs(v([1, 2]), new Map()), Number.POSITIVE_INFINITY)
  })
})

describe('planning the replay of the initialization', () => {
  test('a divergence at init plans it with every recorded init entry; any other step does not', () => {
    const a = run()
    const b = run({'init|param/w': 'ffff'})
    const d = {step: 'init' as const, entry: 'param/w', index_in_step: 0, kind: 'value' as const, phase: 'update' as const}
    const planned = planInitReplay(a, b, d)
    assert.ok('plan' in planned)
    assert.equal(planned.plan.entry, 'param/w')
    assert.deepEqual(Object.keys(planned.plan.recorded.a), ['param/w', 'param/b'])
    assert.notEqual(planned.plan.recorded.a['param/w'], planned.plan.recorded.b['param/w'])
    assert.ok('skip' in planInitReplay(a, b, fd(1, 'opt/w.exp_avg')))
  })

  test("an entry's module: the longest known module path before the tensor's own name", () => {
    assert.equal(entryModule('param/mlp.0.weight', ['mlp.0', 'mlp.1']), 'mlp.0')
    assert.equal(entryModule('buffer/mlp.1.running_mean', ['mlp.0', 'mlp.1']), 'mlp.1')
    assert.equal(entryModule('param/tok.weight', ['tok']), 'tok')
    assert.equal(entryModule('param/W1', ['mlp.0']), null)
    assert.equal(entryModule('fwd/mlp.0', ['mlp.0']), null)
  })
})

describe('a replay that cross-checks a knob', () => {
  const knob: Experiment = {
    id: 'e1',
    kind: 'knob',
    knobs: [{name: 'env.ONEDNN_MAX_CPU_ISA', from: 'SSE41', to: null}],
    target: 2,
    against: 1,
    outcome: 'disappears',
    first_divergence_before: {step: 0, entry: 'fwd/stem.conv'},
    first_divergence_after: null,
    note: '',
  }
  const replay = (toggles: Experiment['toggles']): Experiment => ({
    id: 'e2',
    kind: 'replay',
    op: 'stem.conv (Conv2d) forward at step 0',
    knobs: [],
    target: 2,
    against: 1,
    outcome: 'localized',
    first_divergence_before: {step: 0, entry: 'fwd/stem.conv'},
    first_divergence_after: null,
    note: '',
    toggles,
  })
  const rank = (experiments: Experiment[]) =>
    rankSuspects({
      experiments,
      where: {phase: 'forward', module_type: 'Conv2d', step: 0, entry: 'fwd/stem.conv'},
      fingerprintChanges: [],
      noiseFloors: [],
      seeds: null,
      drift: true,
      workload: 'cnn',
    })

  test('the knob stays the one high suspect; the replay that agrees is named in its evidence, no library suspect of its own', () => {
    const s = rank([
      knob,
      replay([
        {toggle: 'env.ONEDNN_MAX_CPU_ISA unset (as in #1)', outcome: 'bitwise', max_abs: 0},
        {toggle: 'mkldnn off in both', outcome: 'bitwise', max_abs: 0},
      ]),
    ])
    assert.equal(s.length, 1)
    assert.equal(s[0]!.name, 'env.ONEDNN_MAX_CPU_ISA')
    assert.equal(s[0]!.confidence, 'high')
    assert.match(s[0]!.evidence, /the op replay agrees: e2's stem\.conv \(Conv2d\) forward at step 0 differs on identical inputs/)
    assert.match(s[0]!.evidence, /with oneDNN off in both targets the replays are identical too$/)
  })

  test('a replay that does not agree says so', () => {
    const s = rank([knob, replay([{toggle: 'env.ONEDNN_MAX_CPU_ISA unset (as in #1)', outcome: 'closer', max_abs: 1e-7}])])
    assert.match(s[0]!.evidence, /but the op replay does not agree: e2's .* is closer$/)
  })

  test('oneDNN off in both targets reconciling names oneDNN, high, when no knob explains the drift', () => {
    const s = rank([replay([{toggle: 'mkldnn off in both', outcome: 'bitwise', max_abs: 0}])])
    assert.equal(s[0]!.name, 'torch.config.onednn')
    assert.equal(s[0]!.confidence, 'high')
    assert.match(s[0]!.evidence, /replayed with mkldnn off in both targets the two are bitwise identical$/)
  })
})
