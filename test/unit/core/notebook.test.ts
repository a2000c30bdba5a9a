import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {
  cellMagics,
  clean,
  describeCell,
  jsonErrorOffset,
  NOTEBOOK_CAPS,
  NotebookError,
  parseNotebook,
  type NotebookCell,
} from '../../../src/core/notebook.js'
import {ReproError} from '../../../src/errors.js'

const NAME = 'analysis.ipynb'
const code = (source: string | string[], extra: object = {}) => ({
  cell_type: 'code',
  source,
  metadata: {},
  outputs: [],
  execution_count: null,
  ...extra,
})
const md = (source: string | string[]) => ({cell_type: 'markdown', source, metadata: {}})
const notebook = (cells: unknown, extra: object = {}) =>
  JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {kernelspec: {name: 'python3', display_name: 'Python 3', language: 'python'}, language_info: {name: 'python'}},
    cells,
    ...extra,
  })
const codeCell = (source: string): Pick<NotebookCell, 'type' | 'source'> => ({type: 'code', source})

/** Parses `text`, expecting a refusal; checks it is one clean line naming the notebook. */
function refusal(text: string, name = NAME): NotebookError {
  let caught: unknown
  try {
    parseNotebook(text, name)
  } catch (e) {
    caught = e
  }
  assert.ok(caught instanceof NotebookError, `expected a NotebookError, got ${String(caught)}`)
  const line = new ReproError(caught.message, {subject: '--script', hint: caught.hint}).oneLine()
  for (const s of [caught.message, caught.hint, line]) {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for control characters is the point
    assert.doesNotMatch(s, /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/, `control character in ${JSON.stringify(s)}`)
    assert.ok(s.length < 400, `too long: ${s.length}`)
  }
  assert.ok(caught.message.includes(clean(name, 100)), caught.message)
  assert.ok(caught.hint.length > 0)
  return caught
}

describe('parseNotebook', () => {
  const valid = notebook([
    md(['# Title\n', 'Some words\n']),
    code(['%matplotlib inline\n', 'import torch\n', 'x = torch.randn(3, 4) @ torch.randn(4, 5) @ torch.randn(5, 6)\n']),
    code('!pip install x\n'),
    code('%%time\nrun()\n', {outputs: [{output_type: 'stream', name: 'stdout', text: ['\u001b[31mred\n']}]}),
    {cell_type: 'heading', source: 'Old heading', level: 1, metadata: {}},
    code(''),
  ])

  test('keeps every cell in order, 1-based, and counts the code cells', () => {
    const nb = parseNotebook(valid, NAME)
    assert.equal(nb.nbformat, 4)
    assert.equal(nb.language, 'python')
    assert.equal(nb.codeCells, 4)
    assert.deepEqual(
      nb.cells.map((c) => [c.index, c.type]),
      [
        [1, 'markdown'],
        [2, 'code'],
        [3, 'code'],
        [4, 'code'],
        [5, 'raw'],
        [6, 'code'],
      ],
    )
    assert.equal(nb.cells[1]!.source, '%matplotlib inline\nimport torch\nx = torch.randn(3, 4) @ torch.randn(4, 5) @ torch.randn(5, 6)\n')
    assert.equal(nb.cells[2]!.source, '!pip install x\n')
    assert.equal(nb.cells[0]!.firstLine, '# Title')
    assert.equal(nb.cells[5]!.firstLine, '')
    // Only what is needed: no outputs, metadata or execution counts travel on.
    assert.deepEqual(Object.keys(nb.cells[3]!).sort(), ['firstLine', 'index', 'source', 'type'])
  })

  test('firstLine skips blank lines, trims, caps at 80 and replaces control characters', () => {
    const long = `  \n\t\n   y = ${'a'.repeat(200)}\n`
    const nb = parseNotebook(notebook([code(long), code('\u001b[2Jprint(1)\u202e')]), NAME)
    assert.equal(nb.cells[0]!.firstLine.length, 80)
    assert.ok(nb.cells[0]!.firstLine.startsWith('y = aaa'))
    assert.ok(nb.cells[0]!.firstLine.endsWith('…'))
    assert.equal(nb.cells[1]!.firstLine, '\ufffd[2Jprint(1)\ufffd')
    assert.equal(clean('a\ud800b\u{1f600}', 80), 'a\ufffdb\u{1f600}') // a lone surrogate goes, a pair stays
  })

  test('describeCell names the cell by its Jupyter number and first line', () => {
    const nb = parseNotebook(valid, NAME)
    assert.equal(describeCell(nb.cells[2]!), 'cell 3 (!pip install x)')
    assert.equal(describeCell(nb.cells[1]!), 'cell 2 (%matplotlib inline)')
    assert.equal(describeCell(nb.cells[5]!), 'cell 6')
    assert.equal(
      describeCell({index: 4, firstLine: 'x = torch.randn(3, 4) @ torch.randn(4, 5) @ torch.randn(5, 6)'}),
      'cell 4 (x = torch.randn(3, 4) @ torch.randn(4, …)',
    )
  })

  test('language from kernelspec, else language_info, else null', () => {
    assert.equal(parseNotebook(notebook([code('1')], {metadata: {language_info: {name: 'python'}}}), NAME).language, 'python')
    assert.equal(parseNotebook(notebook([code('1')], {metadata: {}}), NAME).language, null)
    assert.equal(parseNotebook(notebook([code('1')], {metadata: {kernelspec: {language: 42}}}), NAME).language, null)
    assert.equal(parseNotebook(notebook([code('1')], {metadata: {kernelspec: {language: 'x'.repeat(65)}}}), NAME).language, null)
    assert.equal(parseNotebook(notebook([code('1')], {metadata: 'nope'}), NAME).language, null)
  })

  test('a prototype-looking key is only data', () => {
    const text = '{"__proto__": {"cells": []}, "nbformat": 4, "metadata": {}, "cells": [{"cell_type": "code", "source": "1"}]}'
    assert.equal(parseNotebook(text, NAME).codeCells, 1)
  })
})

describe('parseNotebook refuses broken or hostile notebooks with one line', () => {
  const cases: [string, string, RegExp][] = [
    ['not JSON', '{"nbformat": 4, "cells": [}', /is not valid JSON \(position 26, line 1\)/],
    ['truncated JSON', '{\n"nbformat": 4,\n"cells": [', /is not valid JSON \(position 27, line 3\)/],
    ['bad JSON echoes nothing of the file', `{"a": ${'\u001b[2J'.repeat(50)}}`, /is not valid JSON \(position 6, line 1\)$/],
    ['BOM', `\ufeff${notebook([code('1')])}`, /byte-order mark/],
    ['top level array', '[1, 2]', /its JSON is an array, not an object/],
    ['top level string', '"hello"', /its JSON is a string, not an object/],
    ['no nbformat', JSON.stringify({cells: []}), /has no nbformat field/],
    ['nbformat 3', JSON.stringify({nbformat: 3, worksheets: [{cells: []}], metadata: {}}), /nbformat 3 notebook/],
    ['nbformat 3 without its number', JSON.stringify({worksheets: []}), /nbformat 3 notebook \(worksheets\)/],
    ['nbformat as a string', notebook([code('1')], {nbformat: '4'}), /nbformat that is a string, not the number 4/],
    ['nbformat 5', notebook([code('1')], {nbformat: 5}), /is an nbformat 5 notebook; repro reads nbformat 4/],
    ['cells not an array', notebook({0: code('1')}), /has cells that are an object, not an array/],
    ['cells missing', JSON.stringify({nbformat: 4, metadata: {}}), /has no cells list/],
    ['cell not an object', notebook([code('1'), 'print(1)']), /: cell 2 is a string, not an object/],
    ['cell_type not a string', notebook([{cell_type: 7, source: '1'}]), /: cell 1 has a cell_type that is a number/],
    ['cell_type missing', notebook([{source: '1'}]), /: cell 1 has a cell_type that is missing/],
    ['source a number', notebook([code(1 as never)]), /: cell 1 has a source that is a number, neither a string nor a list of strings/],
    ['source list with a non-string', notebook([code(['a\n', null as never])]), /: cell 1 has a source list holding null/],
    ['NUL in a code cell', notebook([code('x = 1\nprint("\u0000")')]), /: cell 1 \(x = 1\) contains a NUL character/],
    ['no code cells', notebook([md('# only words'), {cell_type: 'raw', source: 'x'}]), /has no code cells: nothing to run/],
    ['no cells at all', notebook([]), /has no code cells: nothing to run/],
    ['an R notebook', notebook([code('1')], {metadata: {kernelspec: {language: 'R'}}}), /is a R notebook; repro runs Python notebooks/],
    [
      'a hostile language name',
      notebook([code('1')], {metadata: {language_info: {name: 'ju\u001b]0;pwned\u0007lia'}}}),
      /is a ju\ufffd]0;pwned\ufffdlia notebook/,
    ],
  ]
  for (const [what, text, expected] of cases) {
    test(what, () => {
      assert.match(refusal(text).message, expected)
    })
  }

  test('nbformat 3 hints at saving it again as nbformat 4', () => {
    assert.match(refusal(JSON.stringify({nbformat: 3, nbformat_minor: 0, worksheets: []})).hint, /Jupyter ≥ 4.*nbconvert --to notebook/)
  })

  test('a NUL outside code cells is left alone', () => {
    assert.equal(parseNotebook(notebook([md('a\u0000b'), code('1')]), NAME).codeCells, 1)
  })

  test('hints quote a name with spaces for the shell', () => {
    const e = refusal(JSON.stringify({nbformat: 3, worksheets: []}), "my it's.ipynb")
    assert.match(e.hint, /--nbformat 4 'my it'\\''s\.ipynb'$/)
  })

  test('a hostile display name is cleaned too', () => {
    const e = refusal('[]', 'evil\u001b[2J\nname.ipynb')
    assert.match(e.message, /^evil\ufffd\[2J\ufffdname\.ipynb /)
  })

  test('a file over the byte cap is refused before parsing', () => {
    const text = `{"nbformat": 4, "pad": "${'x'.repeat(NOTEBOOK_CAPS.bytes)}"}`
    assert.match(refusal(text).message, /is larger than 16 MiB/)
    assert.match(refusal(text).hint, /clear-output/)
  })

  test('the byte cap counts UTF-8 bytes, not characters', () => {
    const pad = 'é'.repeat(Math.ceil(NOTEBOOK_CAPS.bytes / 2)) // under the cap in characters, over it in bytes
    assert.match(refusal(notebook([code('1')], {pad})).message, /is larger than 16 MiB/)
  })

  test('too many cells', () => {
    const cells = Array.from({length: NOTEBOOK_CAPS.cells + 1}, () => ({cell_type: 'code', source: ''}))
    assert.match(refusal(notebook(cells)).message, /has 5001 cells, more than the 5000 repro runs/)
  })

  test('a cell over the source cap, as a string and as a list', () => {
    const big = 'x'.repeat(NOTEBOOK_CAPS.cellSourceChars + 1)
    assert.match(refusal(notebook([code('1'), code(big)])).message, /: cell 2 has more than 1000000 characters of source/)
    assert.match(refusal(notebook([md([big.slice(0, 600_000), big.slice(600_000)])])).message, /: cell 1 has more than 1000000 characters/)
  })

  test('a huge string within the caps parses, and only its first line is shown', () => {
    const huge = `# ${'y'.repeat(900_000)}\nprint(1)\n`
    const nb = parseNotebook(notebook([code(huge)]), NAME)
    assert.equal(nb.cells[0]!.source.length, huge.length)
    assert.equal(nb.cells[0]!.firstLine.length, 80)
  })

  test('100000 nested arrays: one line, no stack', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000)
    assert.match(refusal(deep).message, /nests JSON more than 256 levels deep \(position 256\)/)
  })

  test('deep nesting hidden in outputs is refused too (the probe reads the file with Python)', () => {
    const nested = JSON.parse('['.repeat(300) + ']'.repeat(300)) as unknown
    assert.match(
      refusal(notebook([code('1', {outputs: [{output_type: 'execute_result', data: {'application/json': nested}}]})])).message,
      /nests JSON/,
    )
  })

  test('brackets inside strings do not count as nesting', () => {
    assert.equal(parseNotebook(notebook([code(`s = "${'['.repeat(1000)}"`)]), NAME).codeCells, 1)
  })

  test('unbalanced deep invalid JSON: still one line', () => {
    assert.match(refusal('{"a": '.repeat(100)).message, /is not valid JSON \(position 600, line 1\)/)
  })
})

describe('jsonErrorOffset', () => {
  test('null for valid JSON, the offset of the first error otherwise', () => {
    for (const ok of ['{}', '[]', ' {"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"]} ', '0', '"s"'])
      assert.equal(jsonErrorOffset(ok), null, ok)
    assert.equal(jsonErrorOffset(''), 0)
    assert.equal(jsonErrorOffset('{"a" 1}'), 5)
    assert.equal(jsonErrorOffset('[1,]'), 3)
    assert.equal(jsonErrorOffset('[01]'), 2)
    assert.equal(jsonErrorOffset('{"a": 1} x'), 9)
    assert.equal(jsonErrorOffset('"a\nb"'), 2) // the raw newline
    assert.equal(jsonErrorOffset('[NaN]'), 1)
    assert.equal(jsonErrorOffset('{,}'), 1)
  })

  test('agrees with JSON.parse on what is valid', () => {
    const samples = [
      '{"a":1}',
      '{"a":1,}',
      '[1 2]',
      '"\\x"',
      '"\\u12"',
      '"\\u00ZZ"',
      '-',
      '-0',
      '1.',
      '.5',
      '1e5',
      '1e',
      'tru',
      'nul',
      '[]]',
      '{"a":{"b":[]}}',
      ' ',
      '{"a":"\\""}',
    ]
    for (const s of samples) {
      let parses = true
      try {
        JSON.parse(s)
      } catch {
        parses = false
      }
      assert.equal(jsonErrorOffset(s) === null, parses, s)
    }
  })
})

describe('cellMagics', () => {
  test('line magics, shell, cell magic and help queries in a cell', () => {
    const src = [
      '%matplotlib inline',
      'import numpy as np',
      '!pip install x',
      'files = !ls -la',
      'x = %timeit f()',
      '  %time g()',
      'np.mean?',
      '??np',
      'a = 7 % 3',
      'if a:',
      '    !echo "it\'s fine"',
      '    b = a % 2',
    ].join('\n')
    const m = cellMagics(codeCell(src))
    assert.equal(m.cellMagic, null)
    assert.deepEqual(m.lineMagics, [
      {line: 1, text: '%matplotlib inline'},
      {line: 5, text: 'x = %timeit f()'},
      {line: 6, text: '%time g()'},
    ])
    assert.deepEqual(m.shell, [
      {line: 3, text: '!pip install x'},
      {line: 4, text: 'files = !ls -la'},
      {line: 11, text: '!echo "it\'s fine"'},
    ])
    assert.deepEqual(m.helpQueries, [
      {line: 7, text: 'np.mean?'},
      {line: 8, text: '??np'},
    ])
  })

  test('%% on the first non-blank line makes the cell a cell magic', () => {
    assert.deepEqual(cellMagics(codeCell('\n%%time\n%ls\n!echo\n')), {lineMagics: [], cellMagic: '%%time', shell: [], helpQueries: []})
    assert.equal(cellMagics(codeCell('%%bash -e\necho hi')).cellMagic, '%%bash -e')
    // A %% later in the cell is not a cell magic; IPython reads it as a line escape.
    const later = cellMagics(codeCell('x = 1\n%%time'))
    assert.equal(later.cellMagic, null)
    assert.deepEqual(later.lineMagics, [{line: 2, text: '%%time'}])
  })

  test('% and ! inside triple-quoted strings are not magics', () => {
    const src = ['doc = """', '%not a magic', '!not shell either', 'what?', '"""', "s = '''x", "%also not'''", '%real'].join('\n')
    const m = cellMagics(codeCell(src))
    assert.deepEqual(m.lineMagics, [{line: 8, text: '%real'}])
    assert.deepEqual(m.shell, [])
    assert.deepEqual(m.helpQueries, [])
  })

  test('modulo is not a magic, at a line start inside brackets or after a continuation either', () => {
    const src = ['a % b', 'y = (a', '     % b)', 'z = a \\', '    % b', 'w = [1,', '  !x]', '%ok']
    const m = cellMagics(codeCell(src.join('\n')))
    assert.deepEqual(m.lineMagics, [{line: 8, text: '%ok'}])
    assert.deepEqual(m.shell, [])
  })

  test('strings and comments: quotes, escapes and # do not confuse it', () => {
    const src = [
      "s = 'it\\'s # not a comment ('",
      'print("done?")',
      'x = 1  # really?',
      "t = 'a\\",
      "%still in the string'",
      '%magic',
      'u = """one line"""',
      '!shell',
    ]
    const m = cellMagics(codeCell(src.join('\n')))
    assert.deepEqual(m.helpQueries, [])
    assert.deepEqual(m.lineMagics, [{line: 6, text: '%magic'}])
    assert.deepEqual(m.shell, [{line: 8, text: '!shell'}])
  })

  test('a magic continued with \\ carries its next line; quotes in a magic do not open strings', () => {
    const m = cellMagics(codeCell(['%time f(1, \\', '  %notmagic)', "!echo 'unbalanced", '%next'].join('\n')))
    assert.deepEqual(
      m.lineMagics.map((l) => l.line),
      [1, 4],
    )
  })

  test('comparisons and keyword arguments are not escaped assignments', () => {
    const m = cellMagics(codeCell(['a != b', 'a == b', 'f(x = 1)', 'a[0] = !ls', 'p, q = %who_ls'].join('\n')))
    assert.deepEqual(m.shell, [{line: 4, text: 'a[0] = !ls'}])
    assert.deepEqual(m.lineMagics, [{line: 5, text: 'p, q = %who_ls'}])
  })

  test('non-code cells have none; CRLF line ends count like LF', () => {
    assert.deepEqual(cellMagics({type: 'markdown', source: '%matplotlib inline'}), {
      lineMagics: [],
      cellMagic: null,
      shell: [],
      helpQueries: [],
    })
    assert.deepEqual(cellMagics(codeCell('x = 1\r\n!ls\r\n')).shell, [{line: 2, text: '!ls'}])
  })

  test('text from the cell is cleaned and capped', () => {
    const m = cellMagics(codeCell(`!echo \u001b[2J${'z'.repeat(200)}`))
    assert.equal(m.shell[0]!.text.length, 80)
    assert.ok(!m.shell[0]!.text.includes('\u001b'))
  })
})
