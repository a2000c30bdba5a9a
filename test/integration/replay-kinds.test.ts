// Op replay beyond the update (issue 27): a knob whose rerun removes the drift is cross-checked by a
// replay that aligns it as a toggle (local python vs itself, ONEDNN_MAX_CPU_ISA=SSE41: Conv and GELU;
// ATEN_CPU_CAPABILITY=default: the initializers); a divergence in backward is traced to the module
// whose backward first computes differently by execution order (bookworm vs trixie, the cnn); and a
// user's script has its first divergent module captured and replayed in both images (examples/ml-repo).
// What the tests expect follows the host's CPU flags where the numerics do.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {PYTHON, repro, ROOT, SHARED_CACHE, tmpDir} from './helpers.js'
import {needs} from './prereqs.js'

interface Experiment {
  id: string
  kind?: string
  op?: string
  outcome: string
  note: string
  toggles?: {toggle: string; outcome: string; max_abs: number | null}[]
  onednn?: {a: string[]; b: string[]}
}
interface Attribution {
  experiments: Experiment[]
  suspects: {name: string; confidence: string; evidence: string}[]
}
interface Report {
  comparisons: {
    workload?: string
    role: string
    divergence: {bitwise_identical: boolean; first_divergence: {step: number | 'init'; entry: string} | null}
  }[]
  by_workload?: {workload: string; attribution: Attribution | null}[]
  attribution?: Attribution | null
}

const avx512 = /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))
const cross = (report: Report, workload: string) =>
  report.comparisons.find((c) => (c.workload ?? workload) === workload && c.role === 'cross')!
const attributionOf = (report: Report, workload: string) => report.by_workload!.find((w) => w.workload === workload)!.attribution!
const replayOf = (a: Attribution) => a.experiments.find((e) => e.kind === 'replay')

describe('a replay cross-checks a knob that removes the drift (local python)', {skip: needs('torch')}, () => {
  test('ONEDNN_MAX_CPU_ISA=SSE41: cnn (Conv) and attention (GELU) diverge and the replay agrees with the knob; mlp and lstm stay identical', () => {
    const out = tmpDir()
    const r = repro(
      [
        'audit',
        ...['--python', PYTHON, '--python', PYTHON, '--set', '2:env.ONEDNN_MAX_CPU_ISA=SSE41', '--workload', 'all'],
        ...['--repeats', '1', '--json', '--out', out],
      ],
      {cacheDir: SHARED_CACHE, timeoutMs: 900_000},
    )
    assert.equal(r.status, 1, r.stderr)
    const report = JSON.parse(r.stdout) as Report
    for (const w of ['mlp', 'lstm']) assert.equal(cross(report, w).divergence.bitwise_identical, true, w)
    for (const [w, type] of [
      ['cnn', 'Conv2d'],
      ['attention', 'GELU'],
    ] as const) {
      const at = attributionOf(report, w)
      const e = replayOf(at)!
      assert.ok(e, `${w}: ${JSON.stringify(at.experiments)}`)
      assert.match(e.op ?? '', new RegExp(`^\\S+ \\(${type}\\) forward at step 0$`))
      assert.equal(e.outcome, 'localized', e.note)
      const toggle = (name: string) => e.toggles!.find((t) => t.toggle.startsWith(name))?.outcome
      assert.equal(toggle('env.ONEDNN_MAX_CPU_ISA unset'), 'bitwise', JSON.stringify(e.toggles))
      assert.equal(toggle('mkldnn off in both'), 'bitwise', JSON.stringify(e.toggles))
      // oneDNN's own log says it ran the op in both
      assert.ok(
        e.onednn?.a.some((p) => !p.startsWith('reorder:')),
        JSON.stringify(e.onednn),
      )
      assert.equal(at.suspects.length, 1, JSON.stringify(at.suspects))
      assert.deepEqual([at.suspects[0]!.name, at.suspects[0]!.confidence], ['env.ONEDNN_MAX_CPU_ISA', 'high'])
      assert.match(
        at.suspects[0]!.evidence,
        /; the op replay agrees: e\d+'s .* bitwise identical replayed with env\.ONEDNN_MAX_CPU_ISA unset/,
      )
      assert.match(at.suspects[0]!.evidence, /with oneDNN off in both targets the replays are identical too$/)
    }
  })

  test('ATEN_CPU_CAPABILITY=default: the first divergence is at init, the initialization replayed, the knob high', () => {
    const out = tmpDir()
    const r = repro(
      [
        'audit',
        ...['--python', PYTHON, '--python', PYTHON, '--set', '2:env.ATEN_CPU_CAPABILITY=default', '--workload', 'mlp'],
        ...['--repeats', '1', '--json', '--out', out],
      ],
      {cacheDir: SHARED_CACHE, timeoutMs: 600_000},
    )
    assert.equal(r.status, 1, r.stderr)
    const report = JSON.parse(r.stdout) as Report
    assert.equal(cross(report, 'mlp').divergence.first_divergence?.step, 'init')
    const at = report.attribution!
    const e = replayOf(at)!
    assert.match(e.op ?? '', /^initialization \(first differing: param\/\S+, \w+\)$/)
    assert.equal(e.outcome, 'localized', e.note)
    assert.match(e.note, /^the same generator state gives different outputs in \d+ of \d+/)
    assert.equal(e.toggles!.find((t) => t.toggle.startsWith('env.ATEN_CPU_CAPABILITY unset'))?.outcome, 'bitwise')
    for (const t of [1, 2]) assert.ok(existsSync(path.join(out, `${e.id}-replay-t${t}`, 'replay.json')), `replay in #${t}`)
    assert.deepEqual([at.suspects[0]!.name, at.suspects[0]!.confidence], ['env.ATEN_CPU_CAPABILITY', 'high'])
    assert.match(at.suspects[0]!.evidence, /the op replay agrees: e\d+'s initialization/)
  })
})

describe('op replay of backward and of a script (real images)', {skip: needs('docker', 'fixture-images')}, () => {
  test('bookworm vs trixie, the cnn: the backward origin by execution order, replayed with toggles; never an ISA the CPU lacks', () => {
    const out = tmpDir()
    const r = repro(
      [
        'audit',
        '--image',
        'repro-fixture:bookworm',
        '--image',
        'repro-fixture:trixie',
        '--workload',
        'cnn',
        '--repeats',
        '1',
        '--json',
        '--out',
        out,
      ],
      {cacheDir: SHARED_CACHE, timeoutMs: 900_000},
    )
    assert.equal(r.status === 0 || r.status === 1, true, r.stderr)
    const report = JSON.parse(r.stdout) as Report
    const fd = cross(report, 'cnn').divergence.first_divergence
    const at = report.attribution
    const e = at ? replayOf(at) : undefined
    for (const x of at?.experiments ?? [])
      for (const t of x.toggles ?? []) {
        assert.notEqual(t.outcome, 'unavailable', `a toggle asked for what the CPU lacks: ${t.toggle}`)
        if (!avx512) assert.doesNotMatch(t.toggle, /avx512/i)
      }
    if (!fd?.entry.startsWith('grad/')) return // not a backward divergence on this machine: nothing more to check
    assert.ok(e, JSON.stringify(at?.experiments))
    assert.match(e.op ?? '', /^\S+ \(\w+\) backward at step \d+ \(first by execution order\)$/)
    // the backward order was recorded in both images
    for (const t of [1, 2]) assert.ok(existsSync(path.join(out, `cnn-${e.id}-order-t${t}`, 'capture.json')), `order in #${t}`)
    if (avx512) {
      // measured on AVX-512 hosts: the loss's backward (log-softmax) is the first to differ, and trixie's
      // ATen at AVX2 (bookworm's capability) makes it bitwise; oneDNN runs nothing there
      assert.equal(e.op, '(loss) (CrossEntropyLoss) backward at step 0 (first by execution order)')
      assert.equal(e.outcome, 'localized', e.note)
      assert.equal(e.toggles!.find((t) => t.toggle === 'ATEN_CPU_CAPABILITY=avx2')?.outcome, 'bitwise', JSON.stringify(e.toggles))
      assert.match(e.note, /oneDNN ran nothing in either/)
      assert.deepEqual([at!.suspects[0]!.name, at!.suspects[0]!.confidence], ['torch.config.cpu_capability', 'high'])
      assert.ok(!at!.suspects.some((s) => s.name === 'torch.config.onednn'), 'oneDNN ran nothing: dropped')
    }
  })

  test('examples/ml-repo (--script) bookworm vs trixie: its first divergent module captured and replayed in both images', () => {
    const out = tmpDir()
    const r = repro(
      [
        'audit',
        '--image',
        'repro-fixture:bookworm',
        '--image',
        'repro-fixture:trixie',
        '--script',
        'train.py',
        '--repeats',
        '1',
        '--json',
        '--out',
        out,
      ],
      {cwd: path.join(ROOT, 'examples', 'ml-repo'), cacheDir: SHARED_CACHE, timeoutMs: 900_000},
    )
    assert.equal(r.status, 1, r.stderr)
    const report = JSON.parse(r.stdout) as Report
    const fd = cross(report, 'script').divergence.first_divergence!
    const e = replayOf(report.attribution!)!
    assert.ok(e, JSON.stringify(report.attribution!.experiments))
    const module = /^(\S+) \(\w+\) forward at step \d+$/.exec(e.op ?? '')?.[1]
    assert.ok(module && (fd.entry === `fwd/${module}` || fd.entry.startsWith(`fwd/${module}.`)), `${e.op} vs ${fd.entry}`)
    assert.equal(e.outcome, 'localized', e.note) // both images replay faithfully, and differ
    for (const t of [1, 2]) {
      assert.ok(existsSync(path.join(out, `script-${e.id}-capture-t${t}`, 'capture.json')), `capture in #${t}`)
      const replay = JSON.parse(readFileSync(path.join(out, `script-${e.id}-replay-t${t}`, 'replay.json'), 'utf8'))
      assert.equal(replay.script, true)
    }
    assert.ok(report.attribution!.suspects[0]!.evidence.startsWith(`${e.id}: `), report.attribution!.suspects[0]!.evidence)
  })
})
