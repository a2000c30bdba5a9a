import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {classifyChange, DEFAULT_POLICY, evaluatePolicy, globToRegExp, isPatchBump} from '../../../src/core/policy.js'
import type {AuditReport, TargetRecord} from '../../../src/core/report.js'
import type {FingerprintRow} from '../../../src/core/fingerprint-diff.js'

const row = (path: string, a: string, b: string): FingerprintRow => ({group: 'framework', path, a, b, changed: true, change: 'changed'})

function report(opts: {torch: string; acc: number; root: string; repeatsBitwise?: boolean}): AuditReport {
  const target = {
    index: 1,
    name: '#1 docker:img',
    kind: 'docker',
    role: 'target',
    knobs_requested: {},
    identity: null,
    status: 'ok',
    error: null,
    runs: [1, 2].map((repeat) => ({
      repeat,
      dir: '',
      seconds: 1,
      final: {val_accuracy: opts.acc, val_loss: 0.3, train_loss: 0.3},
      epochs: [],
      knobs_effective: {},
      timings: {},
    })),
    fingerprint: {schema: 'repro.fingerprint/1', torch: {version: opts.torch}, distributions: [{name: 'numpy', version: opts.torch}]},
    trace_digest: {
      root: opts.root.repeat(64).slice(0, 64),
      steps: [
        {step: 'init', root: 'a'.repeat(16)},
        {step: 0, root: opts.root.repeat(16).slice(0, 16)},
      ],
    },
  } as unknown as TargetRecord
  return {
    schema: 'repro.report/1',
    tool: {name: 'repro', version: '0'},
    created: '',
    command: '',
    host: null,
    git: null,
    settings: {repeats: 2, seed: 1, epochs: 1, data_source: '', data_sha256: '', out_dir: ''},
    targets: [target],
    comparisons: [
      {
        role: 'repeat',
        a: {target: 1, repeat: 1, name: ''},
        b: {target: 1, repeat: 2, name: ''},
        divergence: {
          bitwise_identical: opts.repeatsBitwise ?? true,
          first_divergence: null,
          counts: {
            entries: 1,
            identical: 1,
            differing: opts.repeatsBitwise === false ? 3 : 0,
            differing_with_values: 0,
            beyond_tolerance: 0,
            shape: 0,
            missing_in_a: 0,
            missing_in_b: 0,
          },
          worst: [],
        },
        outcome: {val_accuracy_a: null, val_accuracy_b: null, accuracy_delta: null, val_loss_delta: null},
        fingerprint_changes: [],
        fingerprint_changed: 0,
      },
    ],
    verdict: {status: 'reproducible', exit_code: 0, headline: ''},
  } as unknown as AuditReport
}

describe('policy', () => {
  test('globs and patch bumps', () => {
    assert.ok(globToRegExp('libraries.blas:*').test('libraries.blas:libblas.so.3'))
    assert.ok(!globToRegExp('torch.version').test('torch.versionX'))
    assert.ok(isPatchBump('1.13.0', '1.13.1'))
    assert.ok(!isPatchBump('1.13.1', '2.6.0'))
    assert.ok(isPatchBump('/lib/libblas.so.3.11.0 (3.11.0)', '/lib/libblas.so.3.11.2 (3.11.2)'))
  })

  test('change classes: fail-listed, patch bump allowed, allow-listed, anything else warns', () => {
    assert.equal(classifyChange(row('torch.version', '1.13.1', '2.6.0'), DEFAULT_POLICY), 'fail')
    assert.equal(classifyChange(row('torch.version', '2.6.0', '2.6.1'), DEFAULT_POLICY), 'allowed')
    assert.equal(classifyChange(row('torch.version', '2.6.0', '2.6.1'), {...DEFAULT_POLICY, allow_patch_bumps: false}), 'fail')
    assert.equal(classifyChange(row('distributions.numpy', '1.24', '2.2'), DEFAULT_POLICY), 'allowed')
    assert.equal(classifyChange(row('os.glibc', '2.36', '2.41'), DEFAULT_POLICY), 'warn')
  })

  test('a report held against itself passes every check', () => {
    const r = report({torch: '1.13.1', acc: 0.9, root: 'a'})
    const out = evaluatePolicy(r, r, DEFAULT_POLICY)
    assert.equal(out.status, 'pass')
    assert.deepEqual(
      out.checks.map((c) => [c.name, c.status]),
      [
        ['ran', 'pass'],
        ['reproducible', 'pass'],
        ['fingerprint', 'pass'],
        ['trace', 'pass'],
        ['accuracy', 'pass'],
      ],
    )
  })

  test('a framework upgrade fails with the cause first; the trace difference warns; accuracy within tolerance passes', () => {
    const out = evaluatePolicy(
      report({torch: '2.6.0', acc: 0.902, root: 'b'}),
      report({torch: '1.13.1', acc: 0.9, root: 'a'}),
      DEFAULT_POLICY,
    )
    assert.equal(out.status, 'fail')
    assert.match(out.causes[0]!, /torch\.version 1\.13\.1 → 2\.6\.0/)
    assert.equal(out.checks.find((c) => c.name === 'trace')!.status, 'warn')
    assert.match(out.checks.find((c) => c.name === 'trace')!.detail, /from step 0 on/)
    assert.equal(out.checks.find((c) => c.name === 'accuracy')!.status, 'pass')
  })

  test('accuracy beyond tolerance, bitwise required, and non-reproducible repeats fail', () => {
    const base = report({torch: '1.13.1', acc: 0.9, root: 'a'})
    const out = evaluatePolicy(report({torch: '1.13.1', acc: 0.88, root: 'b', repeatsBitwise: false}), base, {
      ...DEFAULT_POLICY,
      require_bitwise_baseline: true,
    })
    assert.deepEqual(
      out.checks
        .filter((c) => c.status === 'fail')
        .map((c) => c.name)
        .sort(),
      ['accuracy', 'reproducible', 'trace'],
    )
    assert.match(out.checks.find((c) => c.name === 'accuracy')!.detail, /-2\.00 pp\) is beyond ±0\.50 pp/)
  })
})
