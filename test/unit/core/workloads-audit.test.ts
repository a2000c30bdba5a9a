// An audit of several workloads, in pure code: each workload's verdict, one across them, the
// view renderers use, knobs a workload does not exercise, the contrast between workloads and
// a policy that names a workload.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {expandWorkloads} from '../../../src/core/workloads.js'
import {unexercisedBy} from '../../../src/core/knobs.js'
import {DEFAULT_POLICY, evaluatePolicy} from '../../../src/core/policy.js'
import type {AuditReport, PairRecord, Suspect, TargetRecord} from '../../../src/core/report.js'
import {contrastWorkloads} from '../../../src/core/suspects.js'
import {targetsForWorkload, verdictAcrossWorkloads, workloadResults, workloadView} from '../../../src/core/workload-results.js'

const digest = (c: string) => ({root: c.repeat(64), steps: [{step: 0, root: c.repeat(16)}]})

function target(index: number, opts: {cnnFails?: boolean; traces?: Record<string, string>} = {}): TargetRecord {
  const runs = ['mlp', 'cnn', 'lstm'].flatMap((workload) =>
    opts.cnnFails && workload === 'cnn'
      ? []
      : [1, 2].map((repeat) => ({
          workload,
          repeat,
          dir: '',
          seconds: 1,
          final: {
            val_accuracy: workload === 'lstm' ? null : 0.8,
            val_loss: 0.3,
            train_loss: 0.3,
            val_rmse: workload === 'lstm' ? 0.26 : null,
          },
          epochs: [],
          knobs_effective: {},
          timings: {},
        })),
  )
  const error = {message: 'boom', hint: 'fix it', line: `#${index} x: cnn: boom — fix it`}
  const traces = opts.traces ?? {mlp: 'a', cnn: 'b', lstm: 'c'}
  return {
    index,
    name: `#${index} x`,
    kind: 'python',
    role: 'target',
    knobs_requested: {} as TargetRecord['knobs_requested'],
    identity: null,
    status: opts.cnnFails ? 'error' : 'ok',
    error: opts.cnnFails ? error : null,
    ...(opts.cnnFails ? {errors: [{workload: 'cnn', ...error}]} : {}),
    runs,
    fingerprint: {schema: 'repro.fingerprint/1'},
    trace_digest: digest(traces['mlp']!),
    trace_digests: Object.fromEntries(Object.entries(traces).map(([w, c]) => [w, digest(c)])),
  }
}

function pair(workload: string, role: PairRecord['role'], bitwise: boolean): PairRecord {
  return {
    workload,
    role,
    a: {target: 1, repeat: 1, name: '#1 x r1'},
    b: {target: role === 'repeat' ? 1 : 2, repeat: role === 'repeat' ? 2 : 1, name: `#${role === 'repeat' ? 1 : 2} x r1`},
    divergence: {
      bitwise_identical: bitwise,
      first_divergence: bitwise ? null : {step: 0, entry: `grad/${workload}.0.weight`, index_in_step: 3, kind: 'value', phase: 'backward'},
      counts: {
        entries: 10,
        identical: bitwise ? 10 : 5,
        differing: bitwise ? 0 : 5,
        differing_with_values: 0,
        beyond_tolerance: 0,
        shape: 0,
        missing_in_a: 0,
        missing_in_b: 0,
      },
      worst: [],
    },
    outcome: {val_accuracy_a: 0.8, val_accuracy_b: 0.8, accuracy_delta: 0, val_loss_delta: 0},
    fingerprint_changes: [],
    fingerprint_changed: 0,
  }
}

const metric = (w: string) => (w === 'lstm' ? 'val_rmse' : 'val_accuracy') as 'val_accuracy' | 'val_rmse'

describe('audits of several workloads', () => {
  test('`all` expands in table order, names given twice count once', () => {
    assert.deepEqual(expandWorkloads(['cnn', 'all', 'cnn']), ['cnn', 'mlp', 'lstm', 'attention'])
  })

  test('one verdict across workloads: drifting ones named with where they start, the rest grouped', () => {
    const targets = [target(1), target(2)]
    const pairs = ['mlp', 'cnn', 'lstm'].flatMap((w) => [pair(w, 'repeat', true), pair(w, 'cross', w === 'mlp')])
    const results = workloadResults(
      targets,
      pairs,
      ['mlp', 'cnn', 'lstm'].map((w) => ({workload: w, outcome_metric: metric(w)})),
    )
    assert.deepEqual(
      results.map((r) => [r.workload, r.verdict.status]),
      [
        ['mlp', 'reproducible'],
        ['cnn', 'drift'],
        ['lstm', 'drift'],
      ],
    )
    const v = verdictAcrossWorkloads(results, pairs)
    assert.equal(v.exit_code, 1)
    assert.equal(
      v.headline,
      'cnn and lstm diverge (cnn at step 0, grad/cnn.0.weight; lstm at step 0, grad/lstm.0.weight); mlp bitwise identical',
    )
  })

  test('a workload that failed in one target: that workload is an error (exit 2), the others are still judged', () => {
    const targets = [target(1), target(2, {cnnFails: true})]
    const pairs = ['mlp', 'lstm'].flatMap((w) => [pair(w, 'repeat', true), pair(w, 'cross', true)])
    const results = workloadResults(
      targets,
      pairs,
      ['mlp', 'cnn', 'lstm'].map((w) => ({workload: w, outcome_metric: metric(w)})),
    )
    assert.deepEqual(
      results.map((r) => r.verdict.status),
      ['reproducible', 'error', 'reproducible'],
    )
    assert.equal(targetsForWorkload(targets, 'mlp')[1]!.status, 'ok')
    assert.equal(targetsForWorkload(targets, 'cnn')[1]!.error!.line, '#2 x: cnn: boom — fix it')
    const v = verdictAcrossWorkloads(results, pairs)
    assert.equal(v.exit_code, 2)
    assert.match(v.headline, /mlp and lstm bitwise identical; cnn could not run everywhere/)
  })

  test('a workload view holds only that workload’s runs and comparisons', () => {
    const report = {
      targets: [target(1)],
      comparisons: [pair('mlp', 'repeat', true), pair('cnn', 'repeat', true)],
      by_workload: [],
    } as unknown as AuditReport
    const view = workloadView(report, {
      workload: 'cnn',
      outcome_metric: 'val_accuracy',
      verdict: {status: 'reproducible', exit_code: 0, headline: 'x'},
    })
    assert.ok(view.targets[0]!.runs.every((r) => r.workload === 'cnn'))
    assert.deepEqual(
      view.comparisons.map((c) => c.workload),
      ['cnn'],
    )
    assert.equal(view.by_workload, undefined)
  })

  test('knobs a workload or device does not exercise', () => {
    assert.match(unexercisedBy('cudnn_benchmark', 'mlp', 'cpu')!, /not exercised by mlp \(it acts on cnn and lstm\)/)
    assert.match(unexercisedBy('cudnn_benchmark', 'cnn', 'cpu')!, /not exercised on cpu \(it acts on CUDA only\)/)
    assert.equal(unexercisedBy('cudnn_benchmark', 'cnn', 'cuda:0'), null)
    assert.equal(unexercisedBy('threads', 'lstm', 'cpu'), null)
  })

  test('contrast: a library for the layer type only the diverging workload has becomes a stronger suspect', () => {
    const suspect = (name: string): Suspect => ({
      rank: 1,
      kind: 'library',
      name,
      a: 'v2',
      b: 'v3',
      confidence: 'low',
      evidence: 'differs',
      explanation: null,
      source: null,
    })
    const cnn = {
      where: {phase: 'backward', module_type: 'Conv2d', step: 0, entry: 'grad/stem.conv.weight'},
      suspects: [suspect('torch.config.onednn'), suspect('python.version')],
    }
    contrastWorkloads([
      {workload: 'cnn', drifts: true, moduleTypes: ['Conv2d', 'BatchNorm2d', 'Linear'], attribution: cnn},
      {workload: 'mlp', drifts: false, moduleTypes: ['Linear', 'BatchNorm1d', 'Embedding']},
    ])
    assert.equal(cnn.suspects[0]!.confidence, 'medium')
    assert.match(cnn.suspects[0]!.evidence, /only workloads with Conv2d layers diverge \(mlp has none and stays bitwise identical\)/)
    assert.equal(cnn.suspects[1]!.confidence, 'low', 'python is no convolution library')
  })

  test('a policy can name a workload: cnn must match the baseline bitwise, the others only warn', () => {
    const current = {
      targets: [target(1, {traces: {mlp: 'd', cnn: 'e', lstm: 'c'}})],
      comparisons: [],
      by_workload: ['mlp', 'cnn', 'lstm'].map((workload) => ({workload})),
    } as unknown as AuditReport
    const baseline = {targets: [target(1)], comparisons: []} as unknown as AuditReport
    const out = evaluatePolicy(current, baseline, {...DEFAULT_POLICY, workloads: {cnn: {require_bitwise_baseline: true}}})
    const trace = out.checks.filter((c) => c.name === 'trace').map((c) => [c.workload, c.status])
    assert.deepEqual(trace, [
      ['mlp', 'warn'],
      ['cnn', 'fail'],
      ['lstm', 'pass'],
    ])
    const rmse = out.checks.find((c) => c.name === 'accuracy' && c.workload === 'lstm')!
    assert.match(rmse.detail, /^lstm: validation RMSE 0\.2600 vs 0\.2600/)
    assert.equal(out.status, 'fail')
    assert.match(out.causes[0]!, /^cnn: the training trace differs from the baseline/)
  })
})
