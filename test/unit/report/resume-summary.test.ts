// A resumed audit's summary (report.json `resume`): the same line in the terminal, Markdown and
// HTML reports, escaped like everything else that comes from a report file; the schema checks
// the explain stage's counts.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {renderHtml} from '../../../src/report/html.js'
import {renderMarkdown} from '../../../src/report/markdown.js'
import {reportSchema} from '../../../src/report/schema.js'
import {renderTerminal} from '../../../src/report/terminal.js'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {ROOT, sampleReport} from './sample.js'

const RESUME = {
  out_dir: '/tmp/nightly',
  planned: 4,
  resumed: 3,
  reran: [{dir: 't1-r2', reason: 'its run directory is missing'}],
  reruns: {resumed: 2, ran: 1},
}
const LINE =
  'Resumed 3 of 4 runs from --out /tmp/nightly; 1 ran again (t1-r2: its run directory is missing); explaining: 2 of 3 reruns resumed'

describe('the resume summary in every report', () => {
  test('terminal, Markdown and HTML print the line; a plain audit prints none', async () => {
    const plain = sampleReport()
    assert.doesNotMatch(renderMarkdown(plain), /Resumed/)
    assert.doesNotMatch(await renderHtml(plain), /Resumed/)
    const report = {...sampleReport(), resume: RESUME}
    assert.match(renderTerminal(report, {width: 400}), new RegExp(LINE.replace(/[()]/g, '\\$&')))
    // Markdown escapes the parentheses
    assert.ok(renderMarkdown(report).includes(LINE.replace(/[()]/g, '\\$&')), renderMarkdown(report))
    assert.ok((await renderHtml(report)).includes(`<p class="meta">${LINE}</p>`))
  })

  test('a hostile reason is escaped in HTML and Markdown', async () => {
    const report = {
      ...sampleReport(),
      resume: {...RESUME, reran: [{dir: 't1-r2', reason: '<img src=x onerror=alert(1)> [x](https://evil)'}]},
    }
    const html = await renderHtml(report)
    assert.doesNotMatch(html, /<img src=x/)
    assert.match(html, /&lt;img src=x/)
    assert.doesNotMatch(renderMarkdown(report), /\[x\]\(https:\/\/evil\)/)
  })

  test('the schema takes the explain counts and refuses a non-number', () => {
    const example = JSON.parse(readFileSync(path.join(ROOT, 'reports/examples/audit-threads/report.json'), 'utf8'))
    const ok = reportSchema.safeParse({...example, resume: RESUME})
    assert.ok(ok.success, ok.success ? '' : ok.error.message)
    const bad = reportSchema.safeParse({...example, resume: {...RESUME, reruns: {resumed: 'x', ran: 1}}})
    assert.equal(bad.success, false)
  })
})
