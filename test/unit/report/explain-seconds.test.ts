// The seconds of the experiments' probe runs by kind (attribution.explain_seconds): one line in the terminal and
// Markdown reports, absent when no experiment ran or the report predates the field.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {explainSecondsLine} from '../../../src/core/report.js'
import {renderMarkdown} from '../../../src/report/markdown.js'
import {reportSchema} from '../../../src/report/schema.js'
import {renderTerminal} from '../../../src/report/terminal.js'
import {ROOT, sampleReport} from './sample.js'

describe('explain_seconds', () => {
  test('one line with the total and each kind that took time', () => {
    const at = sampleReport().attribution!
    assert.equal(
      explainSecondsLine({...at, explain_seconds: {zoom: 0, knob_reruns: 12.34, replays: 30.5}}),
      'Experiment runs took 42.8 s: knob reruns 12.3 s, op replays 30.5 s',
    )
    assert.equal(
      explainSecondsLine({...at, explain_seconds: {zoom: 4, knob_reruns: 0, replays: 0}}),
      'Experiment runs took 4.0 s: zoom 4.0 s',
    )
    assert.equal(explainSecondsLine({...at, explain_seconds: undefined}), null)
  })

  test('the terminal and Markdown reports print it; a report without it prints nothing new', () => {
    const report = sampleReport()
    assert.doesNotMatch(renderTerminal(report, {width: 100}), /Experiment runs took/)
    assert.doesNotMatch(renderMarkdown(report), /Experiment runs took/)
    report.attribution!.explain_seconds = {zoom: 1.5, knob_reruns: 8, replays: 20.25}
    assert.match(renderTerminal(report, {width: 100}), /Experiment runs took 29\.8 s: zoom 1\.5 s, knob reruns 8\.0 s, op replays 20\.3 s/)
    assert.match(renderMarkdown(report), /Experiment runs took 29\.8 s: zoom 1\.5 s, knob reruns 8\.0 s, op replays 20\.3 s\./)
  })

  test('the report schema takes it and refuses a non-number', () => {
    const report = JSON.parse(readFileSync(path.join(ROOT, 'reports/examples/audit-threads/report.json'), 'utf8'))
    assert.ok(report.attribution, 'the example has an attribution')
    assert.ok(reportSchema.safeParse(report).success, 'the example parses before')
    report.attribution.explain_seconds = {zoom: 0, knob_reruns: 1, replays: 2}
    assert.ok(reportSchema.safeParse(report).success)
    report.attribution.explain_seconds.replays = 'slow'
    assert.equal(reportSchema.safeParse(report).success, false)
  })
})
