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
})
