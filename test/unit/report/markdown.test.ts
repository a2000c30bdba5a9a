// Markdown: verdict first, the sections a PR reviewer needs, tables that stay tables.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {renderMarkdown} from '../../../src/report/markdown.js'
import {cells, sampleReport} from './sample.js'

describe('renderMarkdown', () => {
  const md = renderMarkdown(sampleReport())
  test('the verdict is the first line', () => {
    const first = md.split('\n')[0]!
    assert.match(first, /^## ⚠ repro: 1 of 4 target\\\(s\\\) could not be audited/)
  })
  test('targets table with identity, status and accuracy per repeat', () => {
    assert.match(
      md,
      /\| 1 \| #&#8203;1 docker:img:1 \| docker \| sha256:abc123 \\\(img@&#8203;sha256:def456\\\) \| ok × 2 \| 0\.9000 \/ 0\.9000 \|/,
    )
    assert.match(md, /\| 3 \| .* \| \*\*error\*\* \| — \|/)
    assert.match(md, /\*\(variant\)\*/)
  })
  test('the rerun command in a code block', () => {
    assert.match(md, /```sh\nrepro audit --image img:1 --image img:2\n```/)
  })
  test('first divergence per comparison, fingerprint changes, suspects, errors', () => {
    assert.match(md, /\| cross \| .* \| 60\/100 entries differ \| step 0, fwd\/mlp\.1 \\\(forward\\\) \| -0\.0200 \|/)
    assert.match(md, /<summary>Fingerprint differences: .* \(2 changed\)<\/summary>/)
    assert.match(
      md,
      /\| cpu\\_math \| libraries\.blas:libopenblas\.so\.0 \| \/usr\/lib\/libopenblas\.so\.0 \\\(0\.3\.21\\\) \| \*\(absent\)\* \| removed \|/,
    )
    assert.match(md, /### Suspects\n\nDivergence starts in the \*\*forward\*\* pass of a BatchNorm1d/)
    assert.match(
      md,
      /With every differing knob aligned, it still starts in the \*\*backward\*\* pass of a Embedding \(grad\/emb\.0\.weight, step 3\)/,
    )
    assert.match(
      md,
      /With every differing knob aligned, it still starts in the \*\*backward\*\* pass of a Embedding \(grad\/emb\.0\.weight, step 3\)/,
    )
    assert.match(md, /\[source\]\(https:\/\/docs\.pytorch\.org\/docs\/stable\/notes\/randomness\.html\)/)
    assert.match(md, /source: javascript:alert\\\(1\\\)/)
    assert.match(md, /### Errors\n\n- \*\*#&#8203;3 python:\/opt\/venv\/bin\/python\*\*: no torch — install torch/)
  })
  test('every table row has as many cells as its header', () => {
    let width = 0
    for (const line of md.split('\n')) {
      if (!line.startsWith('|')) {
        width = 0
        continue
      }
      if (width === 0) width = cells(line).length
      else assert.equal(cells(line).length, width, line)
    }
  })
  test('no attribution, no suspects section; deterministic output', () => {
    const r = sampleReport()
    delete r.attribution
    const a = renderMarkdown(r)
    assert.doesNotMatch(a, /Suspects/)
    assert.equal(renderMarkdown(r), a)
  })
  test('reproducible verdict', () => {
    const r = sampleReport()
    r.verdict = {status: 'reproducible', exit_code: 0, headline: 'bitwise reproducible: 3 comparison(s), every trace entry identical'}
    assert.match(renderMarkdown(r).split('\n')[0]!, /^## ✔ repro: bitwise reproducible — 3 comparison\\\(s\\\)/)
  })
})
