// Golden outputs: every committed example re-renders byte for byte (scripts/gen-examples.mjs).
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {renderHtml} from '../../../src/report/html.js'
import {renderJunit} from '../../../src/report/junit.js'
import {loadReport} from '../../../src/report/load.js'
import {renderMarkdown} from '../../../src/report/markdown.js'
import {ROOT} from './sample.js'

const examples = path.join(ROOT, 'reports/examples')
const cases = readdirSync(examples)
  .filter((c) => existsSync(path.join(examples, c, 'report.json')))
  .sort()

describe('reports/examples', () => {
  test('there are examples', () => {
    assert.ok(cases.length >= 3, cases.join(', '))
  })
  for (const c of cases) {
    test(`${c} re-renders byte-identically`, async () => {
      const dir = path.join(examples, c)
      const report = await loadReport(path.join(dir, 'report.json'))
      const read = (f: string) => readFileSync(path.join(dir, f), 'utf8')
      assert.equal(renderMarkdown(report), read('report.md'), `${c}/report.md is stale: run node scripts/gen-examples.mjs`)
      assert.equal(renderJunit(report), read('report.junit.xml'), `${c}/report.junit.xml is stale: run node scripts/gen-examples.mjs`)
      assert.equal(await renderHtml(report), read('report.html'), `${c}/report.html is stale: run node scripts/gen-examples.mjs`)
    })
  }
})
