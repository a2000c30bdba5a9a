// Escaping helpers: every format's rules, control characters, caps, fences.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {
  cleanText,
  escapeHtml,
  escapeMarkdown,
  escapeWorkflowData,
  escapeWorkflowProperty,
  escapeXml,
  markdownFence,
  safeHttpsUrl,
} from '../../../src/report/escape.js'

describe('cleanText', () => {
  test('control, bidi and lone-surrogate characters become U+FFFD; newlines become spaces', () => {
    assert.equal(cleanText('a\u0000b\u001b[31mc\u009bd\u202ee\ud800f'), 'a\ufffdb\ufffd[31mc\ufffdd\ufffde\ufffdf')
    assert.equal(cleanText('a\r\nb\nc'), 'a b c')
    assert.equal(cleanText('a\r\nb', 100, {keepNewlines: true}), 'a\nb')
  })
  test('caps length without splitting a surrogate pair; non-strings as text', () => {
    assert.equal(cleanText('abcdef', 4), 'abc…')
    assert.equal(cleanText('ab😀cd', 4), 'ab…')
    assert.equal(cleanText(null), '—')
    assert.equal(cleanText(3), '3')
    assert.equal(cleanText({a: 1}), '{"a":1}')
  })
})

describe('escapeHtml / escapeXml', () => {
  test('the five special characters', () => {
    assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`), '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
    assert.equal(escapeXml(`<]]>"'&`), '&lt;]]&gt;&quot;&apos;&amp;')
  })
  test('XML drops characters illegal in XML 1.0', () => {
    assert.equal(escapeXml('a\u0001b\ufffec\uffff'), 'a\ufffdb\ufffdc\ufffd')
  })
})

describe('escapeMarkdown', () => {
  test('table pipes, emphasis, links, html and code cannot form', () => {
    assert.equal(escapeMarkdown('| a | b |'), '\\| a \\| b \\|')
    assert.equal(escapeMarkdown('[x](javascript:alert(1))'), '\\[x\\]\\(javascript:alert\\(1\\)\\)')
    assert.equal(escapeMarkdown('<details>*_`~'), '&lt;details&gt;\\*\\_\\`\\~')
    assert.equal(escapeMarkdown('&#64;x'), '&amp;#&#8203;64;x')
  })
  test('mentions, issue references and autolinks are broken', () => {
    assert.equal(escapeMarkdown('@channel'), '@&#8203;channel')
    assert.equal(escapeMarkdown('#12'), '#&#8203;12')
    assert.equal(escapeMarkdown('https://x.io www.y.io'), 'https&#58;//x.io www\\.y.io')
  })
})

describe('markdownFence', () => {
  test('the fence is longer than any backtick run inside', () => {
    const block = markdownFence('a ```` b\n```\nc', 'sh')
    assert.ok(block.startsWith('`````sh\n'))
    assert.ok(block.endsWith('\n`````'))
    assert.equal(markdownFence('x'), '```\nx\n```')
  })
})

describe('workflow commands', () => {
  test('data escapes %, CR, LF; properties also : and ,', () => {
    assert.equal(escapeWorkflowData('100% a\nb'), '100%25 a%0Ab')
    assert.equal(escapeWorkflowProperty('a: b, c\r\nd'), 'a%3A b%2C c%0Ad')
    assert.equal(escapeWorkflowData('::stop-commands::x'), '::stop-commands::x')
  })
})

describe('safeHttpsUrl', () => {
  test('only plain https URLs', () => {
    assert.equal(safeHttpsUrl('https://docs.pytorch.org/a/b.html#x'), 'https://docs.pytorch.org/a/b.html#x')
    assert.equal(safeHttpsUrl('javascript:alert(1)'), null)
    assert.equal(safeHttpsUrl('http://x.io'), null)
    assert.equal(safeHttpsUrl('https://x.io/"onmouseover="a'), null)
    assert.equal(safeHttpsUrl('https://x.io/<script>'), null)
  })
})
