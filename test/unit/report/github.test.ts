// GitHub Actions: annotations for failed checks, the step summary, and the thin I/O wrapper.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {githubAnnotations, MAX_STEP_SUMMARY_BYTES, publishToGitHub, stepSummary} from '../../../src/report/github.js'
import {renderMarkdown} from '../../../src/report/markdown.js'
import {sampleReport} from './sample.js'

describe('githubAnnotations', () => {
  test('one ::error per failed check, ::warning for the informational variant', () => {
    const lines = githubAnnotations(sampleReport())
    assert.ok(lines.length > 0)
    assert.ok(lines.every((l) => /^::(error|warning) title=[^:]*::/.test(l)))
    assert.ok(lines.includes('::error title=repro%3A #3 python%3A/opt/venv/bin/python%3A ran::#3: no torch — install torch'))
    assert.ok(lines.some((l) => l.startsWith('::warning ')))
    assert.ok(lines.filter((l) => l.startsWith('::error ')).length <= 10)
  })
  test('untrusted text cannot start a new command or break the property', () => {
    const lines = githubAnnotations(sampleReport('\n::add-mask::x, y: 100%\r'))
    for (const l of lines) {
      assert.doesNotMatch(l, /[\r\n]/)
      const title = /^::\w+ title=([^:]*)::/.exec(l)![1]!
      assert.doesNotMatch(title, /[,:]/)
    }
    assert.ok(lines.some((l) => l.includes('%0A::add-mask::x, y: 100%25')))
  })
  test('a reproducible report has no annotations', () => {
    const r = sampleReport()
    r.targets = r.targets.slice(0, 1)
    r.comparisons = r.comparisons.slice(0, 1)
    r.verdict = {status: 'reproducible', exit_code: 0, headline: 'bitwise reproducible'}
    assert.deepEqual(githubAnnotations(r), [])
  })
})

describe('stepSummary', () => {
  test('the Markdown report, cut under the size limit at a section break', () => {
    assert.equal(stepSummary(sampleReport()), renderMarkdown(sampleReport()))
    const r = sampleReport()
    r.comparisons[2]!.fingerprint_changes = Array.from({length: 60}, (_, i) => ({
      group: 'packages' as const,
      path: `distributions.p${i}`,
      a: 'x'.repeat(4000),
      b: 'y',
      changed: true,
      change: 'changed' as const,
    }))
    r.comparisons[2]!.fingerprint_changed = 60
    // 60 more targets compared against the first, each with those differences
    for (let i = 0; i < 60; i++) {
      const c = structuredClone(r.comparisons[2]!)
      c.b = {...c.b, target: 100 + i}
      r.comparisons.push(c)
    }
    assert.ok(Buffer.byteLength(renderMarkdown(r)) > MAX_STEP_SUMMARY_BYTES)
    const s = stepSummary(r)
    assert.ok(Buffer.byteLength(s) <= MAX_STEP_SUMMARY_BYTES)
    assert.match(s, /cut to fit the step summary/)
    assert.equal((s.match(/<details>/g) ?? []).length, (s.match(/<\/details>/g) ?? []).length)
  })
})

describe('publishToGitHub', () => {
  test('outside Actions it does nothing', async () => {
    const calls: string[] = []
    const done = await publishToGitHub(
      sampleReport(),
      {},
      {appendFile: async (f) => void calls.push(f), writeLine: (l) => void calls.push(l)},
    )
    assert.equal(done, false)
    assert.deepEqual(calls, [])
  })
  test('inside Actions it appends the summary and prints the annotations', async () => {
    const files: [string, string][] = []
    const lines: string[] = []
    const done = await publishToGitHub(
      sampleReport(),
      {GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: '/tmp/summary.md'},
      {appendFile: async (f, t) => void files.push([f, t]), writeLine: (l) => void lines.push(l)},
    )
    assert.equal(done, true)
    assert.equal(files.length, 1)
    assert.equal(files[0]![0], '/tmp/summary.md')
    assert.ok(files[0]![1].startsWith('## ⚠ repro:'))
    assert.deepEqual(lines, githubAnnotations(sampleReport()))
  })
})
