// A small, complete AuditReport for renderer tests: two targets with repeats, a failed target,
// a knob variant, attribution (noise floor, seeds, an experiment, suspects), and a hook to
// plant hostile strings everywhere a target can put text.

import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {DEFAULT_KNOBS} from '../../../src/core/knobs.js'
import {
  decideVerdict,
  REPORT_SCHEMA,
  type AuditReport,
  type PairRecord,
  type RunRecord,
  type TargetRecord,
} from '../../../src/core/report.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..')

function run(repeat: number, acc: number, loss: number): RunRecord {
  return {
    repeat,
    dir: `/tmp/audit/t-r${repeat}`,
    seconds: 2.5,
    final: {val_accuracy: acc, val_loss: loss, train_loss: 0.7},
    epochs: [
      {epoch: 0, train_loss: 1.0, val_loss: loss + 0.2, val_accuracy: acc - 0.05, seconds: 0.2, last_step: 3},
      {epoch: 1, train_loss: 0.7, val_loss: loss, val_accuracy: acc, seconds: 0.2, last_step: 7},
    ],
    knobs_effective: {device: 'cpu', threads: 1},
    timings: {total_seconds: 2},
  }
}

function target(index: number, name: string, runs: RunRecord[], extra: Partial<TargetRecord> = {}): TargetRecord {
  return {
    index,
    name,
    kind: 'docker',
    role: 'target',
    knobs_requested: {...DEFAULT_KNOBS, env: {}},
    identity: {
      reference: 'img:1',
      details: {
        image: 'img:1',
        id: 'sha256:abc123',
        repo_digests: 'img@sha256:def456',
        labels: '{"org.opencontainers.image.title":"torch"}',
      },
    },
    status: 'ok',
    error: null,
    runs,
    ...extra,
  }
}

function pair(role: PairRecord['role'], a: [number, number, string], b: [number, number, string], bitwise: boolean): PairRecord {
  return {
    role,
    a: {target: a[0], repeat: a[1], name: a[2]},
    b: {target: b[0], repeat: b[1], name: b[2]},
    divergence: {
      bitwise_identical: bitwise,
      first_divergence: bitwise ? null : {step: 0, entry: 'fwd/mlp.1', index_in_step: 3, kind: 'value', phase: 'forward'},
      counts: {
        entries: 100,
        identical: bitwise ? 100 : 40,
        differing: bitwise ? 0 : 60,
        differing_with_values: bitwise ? 0 : 12,
        beyond_tolerance: bitwise ? 0 : 5,
        shape: 0,
        missing_in_a: 0,
        missing_in_b: 0,
      },
      worst: bitwise
        ? []
        : [
            {name: 'fwd/mlp.4', phase: 'forward', step: 7, max_abs: 0.02, rel_l2: 0.01},
            {name: 'param/mlp.0.bias', phase: 'update', step: 'init', max_abs: 3e-6, rel_l2: 1e-6},
            {name: 'grad/mlp.0.weight', phase: 'backward', step: 1, max_abs: Infinity, rel_l2: NaN},
          ],
    },
    outcome: {
      val_accuracy_a: 0.9,
      val_accuracy_b: bitwise ? 0.9 : 0.88,
      accuracy_delta: bitwise ? 0 : -0.02,
      val_loss_delta: bitwise ? 0 : 0.01,
    },
    fingerprint_changes: bitwise
      ? []
      : [
          {
            group: 'framework',
            path: 'torch.version',
            a: '2.5.1',
            b: '2.6.0',
            changed: true,
            change: 'changed',
            text: [
              {value: '2.5.1', removed: true},
              {value: '2.6.0', added: true},
            ],
          },
          {
            group: 'cpu_math',
            path: 'libraries.blas:libopenblas.so.0',
            a: '/usr/lib/libopenblas.so.0 (0.3.21)',
            b: undefined,
            changed: true,
            change: 'removed',
          },
        ],
    fingerprint_changed: bitwise ? 0 : 2,
  }
}

/** The sample report; `s` replaces every string a target could have written. */
export function sampleReport(s?: string): AuditReport {
  const t = (x: string) => (s === undefined ? x : `${x}${s}`)
  const n1 = t('#1 docker:img:1')
  const n2 = t('#2 docker:img:2')
  const targets = [
    target(1, n1, [run(1, 0.9, 0.3), run(2, 0.9, 0.3)]),
    target(2, n2, [run(1, 0.88, 0.31), run(2, 0.88, 0.31)], {
      identity: {reference: t('img:2'), details: {id: t('sha256:0123'), repo_digests: null, labels: t('{"a":"b"}')}},
    }),
    target(3, t('#3 python:/opt/venv/bin/python'), [], {
      kind: 'python',
      status: 'error',
      error: {message: t('no torch'), hint: t('install torch'), line: t('#3: no torch — install torch')},
      identity: null,
    }),
    target(4, t('#4 docker:img:1 [threads=2]'), [run(1, 0.9, 0.3)], {role: 'variant'}),
  ]
  const comparisons = [
    pair('repeat', [1, 1, `${n1} r1`], [1, 2, `${n1} r2`], true),
    pair('repeat', [2, 1, `${n2} r1`], [2, 2, `${n2} r2`], false),
    pair('cross', [1, 1, `${n1} r1`], [2, 1, `${n2} r1`], false),
    pair('variant', [1, 1, `${n1} r1`], [4, 1, t('#4 docker:img:1 [threads=2] r1')], false),
  ]
  if (s !== undefined) {
    const c = comparisons[2]!
    c.divergence.first_divergence!.entry = t('fwd/mlp.1')
    for (const w of c.divergence.worst) w.name = t(w.name)
    for (const r of c.fingerprint_changes) {
      r.path = t(r.path)
      if (typeof r.a === 'string') r.a = t(r.a)
      if (typeof r.b === 'string') r.b = t(r.b)
      if (r.text) for (const x of r.text) x.value = t(x.value)
    }
  }
  return {
    schema: REPORT_SCHEMA,
    tool: {name: 'repro', version: '0.1.0'},
    created: '2026-01-01T00:00:00.000Z',
    command: t('repro audit --image img:1 --image img:2'),
    host: null,
    git: {repository: true, commit: '0123456789abcdef0123', branch: t('main'), dirty: false},
    settings: {repeats: 2, seed: 1234, epochs: 2, data_source: 'synthetic:1', data_sha256: 'ab'.repeat(32), out_dir: t('/tmp/audit')},
    targets,
    comparisons,
    attribution: {
      noise_floor: [
        {target: 1, name: n1, repeats: 2, bitwise: true, differing_entries: 0, spread: []},
        {target: 2, name: n2, repeats: 2, bitwise: false, differing_entries: 3, spread: [{name: t('fwd/mlp.4'), max_abs: 1e-4}]},
      ],
      seeds: {
        seeds: [1, 2, 3],
        per_target: [
          {target: 1, name: n1, accuracy: {n: 3, mean: 0.9, sd: 0.01}, loss: {n: 3, mean: 0.3, sd: 0.02}},
          {target: 2, name: n2, accuracy: {n: 3, mean: 0.88, sd: 0.012}, loss: {n: 3, mean: 0.31, sd: 0.02}},
        ],
        differences: [
          {a: 1, b: 2, diff: -0.02, ci95: [-0.05, 0.01], significant: false, sentence: t('#2 is 0.02 below #1, within seed spread')},
        ],
      },
      experiments: [
        {
          id: 'e1',
          knobs: [{name: 'threads', from: 2, to: 1}],
          target: 2,
          against: 1,
          outcome: 'moves-later',
          first_divergence_before: {step: 0, entry: 'fwd/mlp.1'},
          first_divergence_after: {step: 3, entry: t('fwd/mlp.4')},
          note: t('moved later'),
        },
      ],
      where: {phase: 'forward', module_type: t('BatchNorm1d'), step: 0, entry: t('fwd/mlp.1')},
      residual: {phase: 'backward', module_type: t('Embedding'), step: 3, entry: t('grad/emb.0.weight')},
      suspects: [
        {
          rank: 1,
          kind: 'library',
          name: t('torch'),
          a: t('2.5.1'),
          b: t('2.6.0'),
          confidence: 'high',
          evidence: t('remains after aligning knobs'),
          explanation: t('new kernels'),
          source: 'https://docs.pytorch.org/docs/stable/notes/randomness.html',
        },
        {
          rank: 2,
          kind: 'knob',
          name: 'threads',
          a: '1',
          b: '2',
          confidence: 'medium',
          evidence: t('moves the divergence later'),
          explanation: null,
          source: t('javascript:alert(1)'),
        },
      ],
    },
    verdict: decideVerdict(targets, comparisons),
  }
}

/** Cells of a GFM table row: split at pipes that are not backslash-escaped (as GitHub does). */
export function cells(row: string): string[] {
  const body = row.trim().replace(/^\|/, '')
  const out: string[] = []
  let cell = ''
  for (let i = 0; i < body.length; i++) {
    const ch = body[i]!
    if (ch === '\\' && i + 1 < body.length) {
      cell += ch + body[i + 1]
      i++
    } else if (ch === '|') {
      out.push(cell)
      cell = ''
    } else cell += ch
  }
  if (cell.trim() !== '') out.push(cell)
  return out
}

/** Hostile text a target could put anywhere: markup, Markdown, XML, control characters. */
export const PAYLOAD = [
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  ']]>',
  '"><svg onload=alert(1)>',
  "' onmouseover='alert(1)",
  '| col |',
  '[link](javascript:alert(1))',
  '```\n# injected\n```',
  '~~~',
  '@channel',
  '<details><summary>x</summary>',
  '&lt;script&gt;',
  '\u0000\u0007\u001b[2J\u0085\u202e\ud800\ufffe\r\n',
].join(' ')
