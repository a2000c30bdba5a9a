// `repro report`: re-render a saved report.json from the command line, as a user would.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {repro, ROOT, testEnv, tmpDir} from './helpers.js'

const EXAMPLE = path.join(ROOT, 'reports/examples/threads-drift')
const SOURCE = path.join(EXAMPLE, 'report.json')

describe('repro report', () => {
  test('writes every format into --out and lists them with --json', () => {
    const out = tmpDir()
    const r = repro(['report', SOURCE, '--format', 'md,html,junit,json', '--out', out, '--json'])
    assert.equal(r.status, 0, r.stderr)
    const files = JSON.parse(r.stdout).files as string[]
    assert.deepEqual(
      files,
      ['report.md', 'report.html', 'report.junit.xml', 'report.json'].map((f) => path.join(out, f)),
    )
    for (const f of ['report.md', 'report.html', 'report.junit.xml', 'report.json'])
      assert.equal(readFileSync(path.join(out, f), 'utf8'), readFileSync(path.join(EXAMPLE, f), 'utf8'), f)
  })
  test('defaults: md, html and junit beside FILE', () => {
    const dir = tmpDir()
    copyFileSync(SOURCE, path.join(dir, 'report.json'))
    const r = repro(['report', path.join(dir, 'report.json')])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /wrote .*report\.md\nwrote .*report\.html\nwrote .*report\.junit\.xml/)
    for (const f of ['report.md', 'report.html', 'report.junit.xml']) assert.ok(existsSync(path.join(dir, f)), f)
  })
  test('--stdout prints one format', () => {
    const r = repro(['report', SOURCE, '--format', 'md', '--stdout'])
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, readFileSync(path.join(EXAMPLE, 'report.md'), 'utf8'))
  })
  test('usage errors exit 2 with one line', () => {
    const two = repro(['report', SOURCE, '--format', 'md,html', '--stdout'])
    assert.equal(two.status, 2)
    assert.match(two.stderr, /^repro: report: --stdout prints one format, got 2 \(md, html\) — pass a single --format/)
    const bad = repro(['report', SOURCE, '--format', 'pdf'])
    assert.equal(bad.status, 2)
    assert.match(bad.stderr, /unknown report format "pdf" — use a comma list of md, html, junit, json/)
  })
  test('a missing or invalid file exits 2 naming the file and the fix', () => {
    const missing = repro(['report', '/nonexistent/report.json'])
    assert.equal(missing.status, 2)
    assert.equal(
      missing.stderr.trim(),
      'repro: /nonexistent/report.json: no such file — pass a report.json written by `repro audit` (or `repro compare --json > report.json`)',
    )
    const dir = tmpDir()
    const bad = path.join(dir, 'report.json')
    writeFileSync(bad, JSON.stringify({schema: 'repro.report/1', targets: 'x'}))
    const invalid = repro(['report', bad, '--json'])
    assert.equal(invalid.status, 2)
    const err = JSON.parse(invalid.stdout).error
    assert.match(err.message, /report\.json: is not a valid repro report: /)
    assert.equal(existsSync(path.join(dir, 'report.md')), false)
  })
  test('--github inside Actions appends the step summary and prints annotations', () => {
    const dir = tmpDir()
    const summary = path.join(dir, 'summary.md')
    writeFileSync(summary, '# earlier step\n')
    const r = spawnSync(process.execPath, [path.join(ROOT, 'bin/run.js'), 'report', SOURCE, '--format', 'md', '--out', dir, '--github'], {
      encoding: 'utf8',
      env: testEnv({env: {GITHUB_ACTIONS: 'true', GITHUB_STEP_SUMMARY: summary}}),
    })
    assert.equal(r.status, 0, r.stderr)
    assert.match(
      r.stdout,
      /^::error title=repro%3A #1 fixtures\/runs\/cpu-threads1 r1 vs #2 fixtures\/runs\/cpu-threads2 r1%3A training trace bitwise identical::461\/522 entries differ/m,
    )
    const text = readFileSync(summary, 'utf8')
    assert.ok(text.startsWith('# earlier step\n## ✘ repro: drift between targets'))
  })
})
