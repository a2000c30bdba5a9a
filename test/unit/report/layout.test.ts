// Terminal layout: tables, prose and names fit the width they are given.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {fitTable, shareWidth, shortenMiddle, terminalWidth, wrapText} from '../../../src/report/layout.js'
import {renderTerminal} from '../../../src/report/terminal.js'
import {sampleReport} from './sample.js'

const widest = (text: string) => Math.max(...text.split('\n').map((l) => [...l].length))

describe('terminal layout', () => {
  test('the width comes from COLUMNS, then the stream, then 80; never below 40', () => {
    assert.equal(terminalWidth({COLUMNS: '120'}, 200), 120)
    assert.equal(terminalWidth({}, 100), 100)
    assert.equal(terminalWidth({}, undefined), 80)
    assert.equal(terminalWidth({COLUMNS: 'wide'}, undefined), 80)
    assert.equal(terminalWidth({COLUMNS: '10'}, undefined), 40)
  })

  test('names are shortened in the middle, both ends kept', () => {
    assert.equal(shortenMiddle('/very/long/path/to/python3', 12), '/very/…thon3')
    assert.equal([...shortenMiddle('/very/long/path/to/python3', 12)].length, 12)
    assert.equal(shortenMiddle('short', 12), 'short')
  })

  test('prose wraps at words, keeps its first-line indent and indents the rest', () => {
    const text = '  #1 python:/usr/bin/python3: the probe timed out after 1 s and was killed — raise --timeout'
    const wrapped = wrapText(text, 40, '    ')
    assert.ok(widest(wrapped) <= 40, wrapped)
    assert.ok(wrapped.startsWith('  #1 '))
    assert.ok(
      wrapped
        .split('\n')
        .slice(1)
        .every((l) => l.startsWith('    ')),
    )
    assert.equal(wrapped.replace(/\n\s*/g, ' '), text.trim().replace(/^/, '  '))
    assert.ok(widest(wrapText('x'.repeat(100), 30)) <= 30, 'a word longer than a line is cut')
  })

  test('column widths: natural when they fit, the widest give way first', () => {
    assert.deepEqual(shareWidth([3, 10, 5], 30, 6), [3, 10, 5])
    const w = shareWidth([3, 60, 40, 5], 50, 6)
    assert.ok(w.reduce((s, x) => s + x, 0) <= 50)
    assert.deepEqual([w[0], w[3]], [3, 5], 'narrow columns keep their width')
  })

  test('a table never exceeds the width; shortened columns stay on one line', () => {
    const rows = [
      ['#', 'target', 'evidence'],
      ['1', `python:${'/x'.repeat(60)}/python3`, 'word '.repeat(40).trim()],
    ]
    for (const width of [40, 80, 120]) {
      const t = fitTable(rows, width, {shorten: [1]})
      assert.ok(widest(t) <= width, `${width}: ${widest(t)}`)
    }
  })

  for (const width of [80, 120]) {
    test(`the whole audit summary fits ${width} columns`, () => {
      const out = renderTerminal(sampleReport(), {width})
      const over = out.split('\n').filter((l) => [...l].length > width)
      assert.deepEqual(over, [])
    })
  }
})
