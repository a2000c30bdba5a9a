// JUnit XML: one testcase per check, well-formed, with the right failures.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {XMLParser, XMLValidator} from 'fast-xml-parser'
import {renderJunit, reportChecks} from '../../../src/report/junit.js'
import {sampleReport} from './sample.js'

describe('reportChecks', () => {
  const suites = reportChecks(sampleReport())
  const all = suites.flatMap((s) => s.checks)
  const byName = (re: RegExp) => all.filter((c) => re.test(c.name))
  test('per target: ran and reproducible across repeats', () => {
    assert.deepEqual(
      byName(/: ran$/).map((c) => c.status),
      ['passed', 'passed', 'failed', 'passed'],
    )
    assert.equal(byName(/: ran$/)[2]!.message, '#3: no torch — install torch')
    assert.deepEqual(
      byName(/reproducible across repeats$/).map((c) => c.status),
      ['passed', 'failed', 'skipped', 'skipped'],
    )
  })
  test('per comparison: trace, accuracy, fingerprint (never a failure), per-layer drift beyond atol', () => {
    const cross = suites.find((s) => s.name === '#1 docker:img:1 r1 vs #2 docker:img:2 r1')!
    assert.deepEqual(
      cross.checks.map((c) => [c.name.replace(/^.* r1: /, ''), c.status]),
      [
        ['training trace bitwise identical', 'failed'],
        ['validation accuracy equal', 'failed'],
        ['fingerprint changes', 'passed'],
        ['drift in fwd/mlp.4 at step 7', 'failed'],
        ['drift in param/mlp.0.bias at step init', 'passed'],
        ['drift in grad/mlp.0.weight at step 1', 'failed'],
      ],
    )
    assert.match(cross.checks[2]!.details, /framework torch\.version: 2\.5\.1 → 2\.6\.0/)
  })
  test('a knob variant never fails: its differences are skipped checks', () => {
    const variant = suites.find((s) => s.name.includes('[threads=2]'))!
    assert.ok(variant.checks.every((c) => c.status !== 'failed'))
    assert.ok(variant.checks.some((c) => c.status === 'skipped' && c.message.startsWith('informational knob variant')))
  })
})

describe('renderJunit', () => {
  const xml = renderJunit(sampleReport())
  test('well-formed XML with consistent counts', () => {
    assert.equal(XMLValidator.validate(xml), true)
    const doc = new XMLParser({ignoreAttributes: false, attributeNamePrefix: ''}).parse(xml)
    const suites = [doc.testsuites.testsuite].flat()
    const total = suites.reduce((n: number, s: {testcase: unknown}) => n + [s.testcase].flat().length, 0)
    assert.equal(Number(doc.testsuites.tests), total)
    const failures = (xml.match(/<failure /g) ?? []).length
    assert.equal(Number(doc.testsuites.failures), failures)
  })
  test('deterministic', () => {
    assert.equal(renderJunit(sampleReport()), xml)
  })
})
