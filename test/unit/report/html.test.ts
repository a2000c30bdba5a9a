// HTML: one self-contained, deterministic page with the sections and charts a reviewer needs.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {CSP, renderHtml} from '../../../src/report/html.js'
import {chartSpecs, normalizeSvgIds, renderCharts, textWidth} from '../../../src/report/charts.js'
import {sampleReport} from './sample.js'

describe('renderHtml', async () => {
  const report = sampleReport()
  const html = await renderHtml(report)

  test('a strict CSP, no scripts, no external references', () => {
    assert.ok(html.startsWith('<!DOCTYPE html>\n<html lang="en">'))
    assert.ok(html.includes(`<meta http-equiv="Content-Security-Policy" content="${CSP}">`))
    assert.equal(CSP, "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
    assert.doesNotMatch(html, /<script|<link|<iframe|<img|@import|url\((?!#)/i)
    // the only URLs: SVG namespaces, vega-lite's $schema never reaches the output, one https source link
    const urls = [...html.matchAll(/(?:https?:)?\/\/[^\s"'<>)]+/g)].map((m) => m[0])
    for (const u of urls)
      assert.ok(
        /^http:\/\/www\.w3\.org\/(2000\/svg|1999\/xlink)$/.test(u) || u === 'https://docs.pytorch.org/docs/stable/notes/randomness.html',
        u,
      )
  })
  test('sections in order: verdict, targets, rerun, comparisons, fingerprint, charts, suspects, errors', () => {
    const order = [
      '<header class="verdict-error">',
      'id="targets"',
      '<h3>Rerun</h3>',
      'id="comparisons"',
      'id="fingerprint"',
      'id="charts"',
      'id="suspects"',
      'id="errors"',
    ].map((s) => html.indexOf(s))
    for (const i of order) assert.ok(i > 0)
    assert.deepEqual(
      [...order].sort((a, b) => a - b),
      order,
    )
  })
  test('targets show digests; fingerprint rows show the word diff; suspects and experiments', () => {
    assert.match(html, /sha256:abc123 \(img@sha256:def456\)/)
    assert.match(html, /<del>2\.5\.1<\/del>/)
    assert.match(html, /<ins>2\.6\.0<\/ins>/)
    assert.match(html, /<span class="absent">absent<\/span>/)
    assert.match(html, /Counterfactual reruns/)
    assert.match(
      html,
      /<a href="https:\/\/docs\.pytorch\.org\/docs\/stable\/notes\/randomness\.html" rel="noreferrer noopener">source<\/a>/,
    )
    assert.match(html, /\(source: javascript:alert\(1\)\)/)
  })
  test('charts: divergence maps, accuracy, loss — as inline SVG with marks', () => {
    const figures = [...html.matchAll(/<figure id="([^"]+)">\n<svg[^>]*>([\s\S]*?)<\/svg>/g)]
    assert.deepEqual(
      figures.map((m) => m[1]),
      ['divergence-2', 'divergence-3', 'divergence-4', 'accuracy', 'loss'],
    )
    for (const f of figures) assert.match(f[2]!, /<path|<line|<rect/)
  })
  test('ids are unique across the page', () => {
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1])
    assert.equal(new Set(ids).size, ids.length)
  })
  test('byte-identical on every render', async () => {
    assert.equal(await renderHtml(report), html)
    assert.equal(await renderHtml(structuredClone(report)), html)
  })
  test('printable', () => {
    assert.match(html, /@media print\{/)
  })
})

describe('charts', () => {
  test('one divergence map per non-identical comparison; the first divergence and noise floor in it', () => {
    const specs = chartSpecs(sampleReport())
    const cross = specs.find((s) => s.id === 'divergence-3')!
    const text = JSON.stringify(cross.spec)
    assert.match(text, /"entry":"fwd\/mlp\.1","step":"0"/)
    assert.match(text, /"type":"tick","color":"#d62728"/) // noise floor of target 2 (fwd/mlp.4)
    assert.match(cross.caption, /first divergence \(step 0, fwd\/mlp\.1, forward\)/)
    // non-finite errors are drawn as labelled grey cells, not dropped
    assert.match(text, /"text":"∞"/)
  })
  test('accuracy shows seeds as mean ± sd when attribution has them', () => {
    const acc = chartSpecs(sampleReport()).find((s) => s.id === 'accuracy')!
    assert.match(JSON.stringify(acc.spec), /"mean":0\.9,"lo":0\.89/)
    const r = sampleReport()
    delete r.attribution
    assert.doesNotMatch(JSON.stringify(chartSpecs(r).find((s) => s.id === 'accuracy')!.spec), /"mean"/)
  })
  test('no runs, no accuracy or loss chart', () => {
    const r = sampleReport()
    for (const t of r.targets) t.runs = []
    r.attribution!.seeds = null
    assert.deepEqual(
      chartSpecs(r).map((c) => c.id),
      ['divergence-2', 'divergence-3', 'divergence-4'],
    )
  })
  test('vega ids are renumbered per chart', async () => {
    assert.equal(
      normalizeSvgIds('<g id="gradient_7"/><rect fill="url(#gradient_7)"/><use href="#gradient_7"/>', 'c'),
      '<g id="c-1"/><rect fill="url(#c-1)"/><use href="#c-1"/>',
    )
    const a = await renderCharts(sampleReport())
    const b = await renderCharts(sampleReport())
    assert.deepEqual(a, b)
  })
  test('text widths come from a fixed table', () => {
    assert.equal(textWidth('', 11), 0)
    assert.ok(textWidth('WWW', 11) > textWidth('iii', 11))
  })
})
