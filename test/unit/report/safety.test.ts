// Hostile strings from a target (names, fingerprint values, entry names, error lines, image
// labels) rendered into HTML, Markdown and JUnit: nothing may become live markup.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {XMLParser, XMLValidator} from 'fast-xml-parser'
import {renderHtml} from '../../../src/report/html.js'
import {renderJunit} from '../../../src/report/junit.js'
import {renderMarkdown} from '../../../src/report/markdown.js'
import {githubAnnotations} from '../../../src/report/github.js'
import {cells, PAYLOAD, sampleReport} from './sample.js'

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point (they are stripped from untrusted text)
const ILLEGAL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ufffe\uffff\u202a-\u202e]|[\ud800-\udbff](?![\udc00-\udfff])/

const report = sampleReport(PAYLOAD)
// an image label and identity details: the target's own metadata
report.targets[0]!.identity!.details['labels'] = JSON.stringify({title: PAYLOAD})
report.targets[0]!.identity!.details['id'] = PAYLOAD

describe('HTML', async () => {
  const html = await renderHtml(report)
  test('no script, no event handler, no injected element', () => {
    assert.doesNotMatch(html, /<script/i)
    assert.doesNotMatch(html, /<img/i)
    assert.doesNotMatch(html, /<svg onload/i)
    assert.doesNotMatch(html, /<details><summary>x/)
    // every tag in the output is one the renderer wrote: none has an on* attribute or a javascript: URL
    for (const m of html.matchAll(/<([a-zA-Z][\w:-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g)) {
      const attrs = m[2]!
      assert.doesNotMatch(attrs, /(^|\s)on\w+\s*=/i, m[0].slice(0, 200))
      assert.doesNotMatch(attrs, /javascript:/i, m[0].slice(0, 200))
    }
    // the payload is still there, as text
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'))
    assert.ok(html.includes('&amp;lt;script&amp;gt;'))
  })
  test('no control characters, no bidi overrides, no lone surrogates', () => {
    assert.doesNotMatch(html.replace(/[\n\t]/g, ''), ILLEGAL)
  })
  test('the SVG charts hold the hostile labels as escaped text', () => {
    const svgs = [...html.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0])
    assert.ok(svgs.length >= 3)
    for (const s of svgs) {
      assert.doesNotMatch(s, /<script|<img|onload=|onerror=|<foreignObject/i)
    }
    assert.ok(svgs.some((s) => s.includes('&lt;script&gt;')))
  })
})

describe('JUnit', () => {
  const xml = renderJunit(report)
  test('well-formed XML 1.0', () => {
    assert.equal(XMLValidator.validate(xml), true)
    assert.doesNotMatch(xml.replace(/[\n\t]/g, ''), ILLEGAL)
    assert.doesNotMatch(xml, /<!\[CDATA\[/)
  })
  test('the payload survives as text', () => {
    const doc = new XMLParser({ignoreAttributes: false, attributeNamePrefix: '', processEntities: true, htmlEntities: false}).parse(xml)
    const names: string[] = [doc.testsuites.testsuite]
      .flat()
      .flatMap((s: {testcase: {name: string}[]}) => [s.testcase].flat().map((c) => c.name))
    assert.ok(names.some((n) => n.includes('<script>alert(1)</script>') && n.includes(']]>')))
  })
})

describe('Markdown', () => {
  const md = renderMarkdown(report)
  const lines = md.split('\n')
  // lines outside fenced code blocks
  const outside: string[] = []
  let fence: string | null = null
  for (const line of lines) {
    const m = /^(`{3,})/.exec(line)
    if (fence === null && m) fence = m[1]!
    else if (fence !== null && line === fence) fence = null
    else if (fence === null) outside.push(line)
  }
  test('code fences close where the renderer closes them', () => {
    assert.equal(fence, null)
    const open = lines.find((l) => /^`{3,}sh$/.test(l))!
    assert.ok(open.length - 2 > 3, 'the fence grew past the backtick run in the command')
  })
  test('no raw HTML except the renderer’s own <details>', () => {
    for (const line of outside) {
      const rest = line
        .replace(/^<details><summary>/, '')
        .replace(/<\/summary>$/, '')
        .replace(/^<\/details>$/, '')
      assert.doesNotMatch(rest, /</, line)
    }
  })
  test('tables keep their column count', () => {
    let width = 0
    let rows = 0
    for (const line of outside) {
      if (!line.startsWith('|')) {
        width = 0
        continue
      }
      rows++
      if (width === 0) width = cells(line).length
      else assert.equal(cells(line).length, width, line)
    }
    assert.ok(rows > 10)
  })
  test('no links, no mentions, no control characters', () => {
    for (const line of outside) {
      assert.doesNotMatch(line, /(?<!\\)\]\((?!https:\/\/docs\.pytorch\.org)/, line)
      assert.doesNotMatch(line, /@channel/, line)
    }
    assert.doesNotMatch(md.replace(/\n/g, ''), ILLEGAL)
  })
})

describe('GitHub annotations', () => {
  test('one line each, whatever the payload', () => {
    for (const l of githubAnnotations(report)) {
      assert.doesNotMatch(l, /[\r\n]/)
      assert.match(l, /^::(error|warning) title=[^:,]*::/)
    }
  })
})
