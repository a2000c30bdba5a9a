// Op replay (issue 27, first slice): the mlp's drift between Debian's torch 1.13 and 2.6 that no
// knob explains starts in Adam's update at step 1. Its inputs, stored in both runs, are bitwise
// identical; replayed on exactly those bytes in each image, each replay reproduces its own
// image's recorded outputs and the two differ — the update op of that release, high confidence
// with the sourced entry for Adam's 1.x → 2.x change. On every report format.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import type {AuditReport} from '../../src/core/report.js'
import {renderTerminal} from '../../src/report/terminal.js'
import {repro, SHARED_CACHE, tmpDir} from './helpers.js'
import {needs} from './prereqs.js'

interface Report {
  verdict: {exit_code: number; headline: string}
  attribution: {
    experiments: {id: string; kind?: string; op?: string; outcome: string; note: string; target: number; against: number}[]
    suspects: {name: string; confidence: string; evidence: string; source: string | null}[]
  }
}

describe('op replay of an optimizer update (real images)', {skip: needs('docker', 'fixture-images')}, () => {
  test("bookworm vs trixie, the mlp: Adam's step-1 update replayed on identical inputs localizes the drift; torch.version high", () => {
    const out = tmpDir()
    const r = repro(
      ['audit', '--image', 'repro-fixture:bookworm', '--image', 'repro-fixture:trixie', '--repeats', '1', '--json', '--out', out],
      {
        cacheDir: SHARED_CACHE,
        timeoutMs: 600_000,
      },
    )
    assert.equal(r.status, 1, r.stderr)
    const report = JSON.parse(r.stdout) as Report
    const replays = report.attribution.experiments.filter((e) => e.kind === 'replay')
    assert.equal(replays.length, 1, JSON.stringify(report.attribution.experiments))
    const e = replays[0]!
    assert.equal(e.op, 'Adam update of step 1')
    assert.equal(e.outcome, 'localized', e.note)
    assert.match(
      e.note,
      /^identical inputs \(\d+ tensors\) give different outputs in \d+ of \d+ entries \(first: opt\/\S+\.exp_avg\); each replay reproduces its own target's recorded bytes/,
    )
    // each side replayed in its own image, from files the host wrote and validated
    for (const t of [1, 2]) assert.ok(existsSync(path.join(out, `${e.id}-replay-t${t}`, 'replay.json')), `replay in #${t}`)
    const top = report.attribution.suspects[0]!
    assert.deepEqual([top.name, top.confidence], ['torch.version', 'high'])
    assert.ok(
      top.evidence.startsWith(`${e.id}: the Adam update of step 1 replayed on identical inputs in #1 and #2 gives different outputs`),
    )
    assert.match(top.source ?? '', /torch\/optim\/adam\.py$/)
    assert.match(report.verdict.headline, /top suspect: torch\.version \(1\.13\.0a0 → 2\.6\.0\+debian\), high confidence/)
    // the other formats carry the experiment too
    assert.match(readFileSync(path.join(out, 'report.md'), 'utf8'), /Op replays \(1\)[\s\S]*Adam update of step 1[\s\S]*localized/)
    assert.match(readFileSync(path.join(out, 'report.html'), 'utf8'), /<h3>Op replays<\/h3>[\s\S]*Adam update of step 1/)
    const terminal = renderTerminal(report as unknown as AuditReport, {width: 100})
    assert.match(
      terminal,
      /^Op replays \(identical inputs, replayed in each target\)\n {2}e\d+ Adam update of step 1, #1 and #2: localized — /m,
    )
  })

  test('bookworm vs trixie, lstm and attention: the first divergent module captured in both, replayed alone on identical inputs, then with toggles', () => {
    const out = tmpDir()
    const audit = repro(
      [
        'audit',
        ...['--image', 'repro-fixture:bookworm', '--image', 'repro-fixture:trixie', '--workload', 'lstm', '--workload', 'attention'],
        ...['--repeats', '1', '--json', '--out', out],
      ],
      {cacheDir: SHARED_CACHE, timeoutMs: 900_000},
    )
    assert.equal(audit.status, 1, audit.stderr)
    const report = JSON.parse(audit.stdout) as {
      comparisons: {workload: string; role: string; divergence: {first_divergence: {step: number; entry: string} | null}}[]
      by_workload: ({workload: string} & Pick<Report, 'attribution'>)[]
    }
    const checked: string[] = []
    const avx512 = /\bavx512f\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))
    for (const [workload, module, type] of [
      ['lstm', 'lstm', 'LSTM'],
      ['attention', 'norm1', 'LayerNorm'],
    ] as const) {
      const w = report.by_workload.find((x) => x.workload === workload)!
      const fd = report.comparisons.find((c) => c.workload === workload && c.role === 'cross')!.divergence.first_divergence
      if (!fd?.entry.startsWith(`fwd/${module}`)) continue // not this machine's divergence: nothing to replay there
      checked.push(workload)
      const e = w.attribution.experiments.find((x) => x.kind === 'replay')!
      assert.equal(e.op, `${module} (${type}) forward at step ${fd.step}`)
      assert.equal(e.outcome, 'localized', e.note)
      assert.match(
        e.note,
        /^identical inputs \(\d+ captured tensors\) give different outputs in \d+ of \d+ \(first: fwd\/\S+\); each replay reproduces its own target's recorded bytes; toggles on #2: mkldnn off /,
      )
      for (const t of [1, 2]) assert.ok(existsSync(path.join(out, `${workload}-${e.id}-capture-t${t}`, 'capture.json')), `capture in #${t}`)
      // the replay backs the top suspect, whatever it names
      assert.ok(w.attribution.suspects[0]!.evidence.startsWith(`${e.id}: `), w.attribution.suspects[0]!.evidence)
      if (workload === 'lstm' && avx512) {
        // measured on AVX-512 hosts: oneDNN off and ATen's AVX2 only together make trixie's LSTM bitwise bookworm's
        const all = (e as unknown as {toggles: {toggle: string; outcome: string}[]}).toggles
        assert.equal(all.at(-1)!.outcome, 'bitwise', JSON.stringify(all))
        assert.deepEqual(
          w.attribution.suspects
            .slice(0, 2)
            .map((s) => s.name)
            .sort(),
          ['torch.config.cpu_capability', 'torch.config.onednn'],
        )
      }
      if (workload === 'attention' && avx512) {
        // measured on AVX-512 hosts: LayerNorm changed between 1.13 and 2.6 at the same ISA, no toggle reconciles it
        assert.deepEqual([w.attribution.suspects[0]!.name, w.attribution.suspects[0]!.confidence], ['torch.version', 'medium'])
        assert.match(w.attribution.suspects[0]!.evidence, /cause not isolated$/)
      }
    }
    assert.ok(checked.length > 0, 'at least one workload diverges at its module on every CPU measured (lstm and attention both here)')
  })
})
