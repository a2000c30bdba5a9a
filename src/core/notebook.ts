// Reads a Jupyter notebook's text (`--script analysis.ipynb`) into the cells repro runs, and
// refuses a broken or hostile file with one line before anything reaches a target.
// Pure: the caller reads the file; NotebookError carries message and hint for its ReproError.

export const NOTEBOOK_CAPS = {
  bytes: 16 * 1024 * 1024,
  cells: 5000,
  cellSourceChars: 1_000_000,
  /** Nesting of `[`/`{` anywhere in the file: the probe reads it again with Python's recursive json. */
  jsonDepth: 256,
} as const

export type NotebookCellType = 'code' | 'markdown' | 'raw'

export interface NotebookCell {
  /** 1-based position among all cells, as Jupyter's UI counts. */
  index: number
  /** Cell types other than code and markdown (e.g. nbformat 3's 'heading') are kept as 'raw'. */
  type: NotebookCellType
  source: string
  /** First non-empty line, trimmed, at most 80 characters, control characters replaced. */
  firstLine: string
}

export interface Notebook {
  nbformat: number
  /** metadata.kernelspec.language or metadata.language_info.name; null when neither is given. */
  language: string | null
  cells: NotebookCell[]
  codeCells: number
}

/** A notebook repro will not run; the app turns it into a ReproError (subject '--script'). */
export class NotebookError extends Error {
  override name = 'NotebookError'
  readonly hint: string
  constructor(message: string, hint: string) {
    super(message)
    this.hint = hint
  }
}

const MIB = 1024 * 1024
const RESAVE = 'open it in Jupyter and save it again, or pass the notebook file itself (.ipynb, as Jupyter saves it)'

export function parseNotebook(text: string, name: string): Notebook {
  const nb = clean(name, 100)
  // The name as a shell word, for the commands the hints suggest.
  const arg = /^[\w./@+-]+$/.test(nb) ? nb : `'${nb.replace(/'/g, `'\\''`)}'`
  function fail(what: string, hint: string): never {
    throw new NotebookError(`${nb} ${what}`, hint)
  }
  const clearOutputs = `clear its outputs (Jupyter: Edit → Clear All Outputs, or jupyter nbconvert --clear-output --inplace ${arg})`

  if (utf8Exceeds(text, NOTEBOOK_CAPS.bytes))
    fail(`is larger than ${NOTEBOOK_CAPS.bytes / MIB} MiB, more than repro reads from a notebook`, clearOutputs)
  if (text.charCodeAt(0) === 0xfeff) fail('starts with a byte-order mark', 'save it as UTF-8 without a BOM, as Jupyter does')
  const deep = tooDeepAt(text, NOTEBOOK_CAPS.jsonDepth)
  if (deep !== null) fail(`nests JSON more than ${NOTEBOOK_CAPS.jsonDepth} levels deep (position ${deep})`, `${clearOutputs}, or ${RESAVE}`)

  let top: unknown
  try {
    top = JSON.parse(text)
  } catch {
    // V8's message may quote the text; say where instead, found by our own scan.
    const at = jsonErrorOffset(text)
    if (at === null) fail('could not be read as JSON', RESAVE)
    else fail(`is not valid JSON (position ${at}, line ${lineOf(text, at)})`, RESAVE)
  }
  if (!isObject(top)) fail(`is not a Jupyter notebook: its JSON is ${typeName(top)}, not an object`, RESAVE)
  const root = top as Record<string, unknown>

  const nbformat = own(root, 'nbformat')
  const toV4 = `open and save it in Jupyter ≥ 4, or run jupyter nbconvert --to notebook --nbformat 4 ${arg}`
  if (nbformat === undefined) {
    if (own(root, 'worksheets') !== undefined) fail('is an nbformat 3 notebook (worksheets); repro reads nbformat 4', toV4)
    fail('has no nbformat field: it is not a Jupyter notebook', RESAVE)
  }
  if (typeof nbformat !== 'number') fail(`has an nbformat that is ${typeName(nbformat)}, not the number 4`, RESAVE)
  if (nbformat !== 4) fail(`is an nbformat ${clean(String(nbformat), 12)} notebook; repro reads nbformat 4`, toV4)

  const language = notebookLanguage(own(root, 'metadata'))
  if (language !== null && !/^i?python\d?$/i.test(language))
    fail(`is a ${language} notebook; repro runs Python notebooks`, 'pass a notebook whose kernel is Python, or a .py script')

  const rawCells = own(root, 'cells')
  if (rawCells === undefined) fail('has no cells list: it is not an nbformat 4 notebook', RESAVE)
  if (!Array.isArray(rawCells)) fail(`has cells that are ${typeName(rawCells)}, not an array`, RESAVE)
  const list = rawCells as unknown[]
  if (list.length > NOTEBOOK_CAPS.cells)
    fail(`has ${list.length} cells, more than the ${NOTEBOOK_CAPS.cells} repro runs`, 'split it into smaller notebooks')

  const failCell = (what: string, hint: string): never => {
    throw new NotebookError(`${nb}: ${what}`, hint)
  }
  const cells = list.map((raw, i) => readCell(raw, i + 1, failCell))
  const codeCells = cells.filter((c) => c.type === 'code').length
  if (codeCells === 0) fail('has no code cells: nothing to run', 'pass a notebook with at least one code cell')
  return {nbformat, language, cells, codeCells}
}

function readCell(raw: unknown, index: number, fail: (what: string, hint: string) => never): NotebookCell {
  const at = `cell ${index}`
  if (!isObject(raw)) return fail(`${at} is ${typeName(raw)}, not an object`, RESAVE)
  const cellType = own(raw, 'cell_type')
  if (typeof cellType !== 'string') return fail(`${at} has a cell_type that is ${typeName(cellType)}, not a string`, RESAVE)
  const type: NotebookCellType = cellType === 'code' || cellType === 'markdown' ? cellType : 'raw'

  const src = own(raw, 'source')
  const tooLong = () =>
    fail(`${at} has more than ${NOTEBOOK_CAPS.cellSourceChars} characters of source`, 'split the cell, or load large data from a file')
  let source: string
  if (typeof src === 'string') {
    if (src.length > NOTEBOOK_CAPS.cellSourceChars) tooLong()
    source = src
  } else if (Array.isArray(src)) {
    let total = 0
    for (const part of src) {
      if (typeof part !== 'string') return fail(`${at} has a source list holding ${typeName(part)}, not only strings`, RESAVE)
      total += part.length
      if (total > NOTEBOOK_CAPS.cellSourceChars) tooLong()
    }
    source = src.join('')
  } else return fail(`${at} has a source that is ${typeName(src)}, neither a string nor a list of strings`, RESAVE)

  const cell: NotebookCell = {index, type, source, firstLine: firstLineOf(source)}
  if (type === 'code' && source.includes('\u0000'))
    fail(`${describeCell(cell)} contains a NUL character`, 'remove it in Jupyter; Python refuses source code with NUL characters')
  return cell
}

/** `cell 4 (x = torch.randn(3, 4) @ …)`, for messages; `cell 4` when the cell is empty. */
export function describeCell(cell: Pick<NotebookCell, 'index' | 'firstLine'>): string {
  return cell.firstLine === '' ? `cell ${cell.index}` : `cell ${cell.index} (${clean(cell.firstLine, 40)})`
}

export interface SourceLine {
  /** 1-based line within the cell's source. */
  line: number
  /** The line, trimmed, at most 80 characters, control characters replaced. */
  text: string
}

export interface CellMagics {
  /** `%name …` at statement start, or `target = %name …`; a `%%` line after the first counts here. */
  lineMagics: SourceLine[]
  /** The first non-blank line when it starts with `%%` (the whole cell belongs to it); else null. */
  cellMagic: string | null
  /** `!cmd` at statement start, or `target = !cmd`. */
  shell: SourceLine[]
  /** `obj?`, `obj??`, `?obj` at statement start. */
  helpQueries: SourceLine[]
}

const ASSIGN_TARGET = String.raw`[\p{L}_][\p{L}\p{N}_.]*(?:\[[^\]]*\])?`
/** IPython's `x = %magic …` / `x, y = !cmd` forms. */
const ESCAPED_ASSIGN = new RegExp(String.raw`^${ASSIGN_TARGET}(?:\s*,\s*${ASSIGN_TARGET})*\s*=\s*([!%])`, 'u')

/**
 * IPython syntax in a code cell, found without IPython: only at the start of a statement, i.e.
 * not inside a string (triple-quoted ones span lines), brackets, or after a `\` continuation.
 * A cell magic's body is not Python, so nothing else is reported for such a cell.
 */
export function cellMagics(cell: Pick<NotebookCell, 'type' | 'source'>): CellMagics {
  const out: CellMagics = {lineMagics: [], cellMagic: null, shell: [], helpQueries: []}
  if (cell.type !== 'code') return out
  const lines = cell.source.split(/\r\n|\r|\n/)
  // IPython drops leading blank lines before looking for `%%` on the first line.
  const first = lines.find((l) => l.trim() !== '')
  if (first?.startsWith('%%')) {
    out.cellMagic = clean(first.trim(), 80)
    return out
  }
  const lex: LexState = {triple: null, quote: null, depth: 0, continued: false}
  lines.forEach((raw, k) => {
    const atStatementStart = lex.triple === null && lex.quote === null && lex.depth === 0 && !lex.continued
    const trimmed = raw.trim()
    const entry = {line: k + 1, text: clean(trimmed, 80)}
    if (atStatementStart && trimmed !== '') {
      const esc = trimmed[0] === '%' || trimmed[0] === '!' || trimmed[0] === '?' ? trimmed[0] : ESCAPED_ASSIGN.exec(trimmed)?.[1]
      if (esc !== undefined) {
        ;(esc === '%' ? out.lineMagics : esc === '!' ? out.shell : out.helpQueries).push(entry)
        // The rest of the line is the command, not Python: don't lex its quotes or brackets.
        lex.continued = trimmed.endsWith('\\')
        return
      }
    }
    const lastCode = lexLine(raw, lex)
    if (atStatementStart && lastCode === '?') out.helpQueries.push(entry)
  })
  return out
}

interface LexState {
  triple: string | null
  quote: string | null
  depth: number
  continued: boolean
}

/** Advances Python's lexical state over one line; returns its last code character (outside strings and comments). */
function lexLine(line: string, st: LexState): string {
  let last = ''
  let escapedEol = false
  let i = 0
  while (i < line.length) {
    const c = line[i]!
    if (st.triple !== null || st.quote !== null) {
      if (c === '\\') {
        escapedEol = i === line.length - 1
        i += 2
      } else if (st.triple !== null && line.startsWith(st.triple, i)) {
        st.triple = null
        i += 3
      } else if (c === st.quote) {
        st.quote = null
        i++
      } else i++
      continue
    }
    if (c === '#') break
    if (c === '"' || c === "'") {
      if (line.startsWith(c.repeat(3), i)) {
        st.triple = c.repeat(3)
        i += 3
      } else {
        st.quote = c
        i++
      }
      last = c
      continue
    }
    if ('([{'.includes(c)) st.depth++
    else if (')]}'.includes(c)) st.depth = Math.max(0, st.depth - 1)
    if (c !== ' ' && c !== '\t' && c !== '\f') last = c
    i++
  }
  // A one-quote string ends at the line's end unless a backslash carries it on.
  if (st.quote !== null && !escapedEol) st.quote = null
  st.continued = st.triple === null && st.quote === null && last === '\\'
  return last
}

function notebookLanguage(metadata: unknown): string | null {
  if (!isObject(metadata)) return null
  const kernelspec = own(metadata, 'kernelspec')
  const info = own(metadata, 'language_info')
  for (const v of [isObject(kernelspec) ? own(kernelspec, 'language') : undefined, isObject(info) ? own(info, 'name') : undefined]) {
    if (typeof v === 'string' && v.trim() !== '' && v.length <= 64) return clean(v.trim(), 64)
  }
  return null
}

function firstLineOf(source: string): string {
  // Scan line by line so a megabyte cell is not split whole.
  let start = 0
  while (start <= source.length) {
    const m = /\r\n|\r|\n/g
    m.lastIndex = start
    const hit = m.exec(source)
    const end = hit ? hit.index : source.length
    const line = source.slice(start, end).trim()
    if (line !== '') return clean(line, 80)
    if (!hit) break
    start = end + hit[0].length
  }
  return ''
}

// As report/escape.ts (which core cannot import), and also newlines, line/paragraph separators
// and LRM/RLM: nothing from the file may move the cursor, clear the screen, break the one-line
// message or reorder what the terminal shows.
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point (they are replaced in untrusted text)
  /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\ufffe\uffff\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** At most `max` code points, `…` where cut, tabs as spaces and unsafe characters as `�`. */
export function clean(s: string, max: number): string {
  let out = ''
  let n = 0
  for (const ch of s) {
    if (++n > max) {
      out = `${Array.from(out)
        .slice(0, max - 1)
        .join('')}…`
      break
    }
    out += ch
  }
  return out.replace(/\t/g, ' ').replace(UNSAFE, '\ufffd')
}

function own(obj: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(obj, key) ? obj[key] : undefined
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function typeName(v: unknown): string {
  if (v === undefined) return 'missing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`
}

/** Whether the UTF-8 encoding of `text` is longer than `cap` bytes, without encoding it. */
function utf8Exceeds(text: string, cap: number): boolean {
  if (text.length > cap) return true // every UTF-16 unit takes at least one byte
  if (text.length * 3 <= cap) return false // and at most three
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4
      i++
    } else bytes += 3
    if (bytes > cap) return true
  }
  return false
}

/** Position of the first `[`/`{` deeper than `limit` (outside strings), or null. */
function tooDeepAt(text: string, limit: number): number | null {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return i
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return null
}

function lineOf(text: string, offset: number): number {
  let line = 1
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 0x0a) line++
  return line
}

const JSON_NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
const JSON_WS = /[ \t\n\r]*/y

/** Offset of the first JSON syntax error (RFC 8259), or null when the text is valid; iterative. */
export function jsonErrorOffset(text: string): number | null {
  let i = 0
  const stack: string[] = []
  const skipWs = () => {
    JSON_WS.lastIndex = i
    JSON_WS.exec(text)
    i = JSON_WS.lastIndex
  }
  const scanString = (): boolean => {
    i++ // opening quote
    while (i < text.length) {
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        return true
      }
      if (c < 0x20) return false
      if (c === 0x5c) {
        const e = text[i + 1]
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return false
          i += 6
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2
        else return false
      } else i++
    }
    return false
  }
  let mode: 'value' | 'key' | 'after' = 'value'
  for (;;) {
    skipWs()
    if (mode === 'after') {
      const top = stack[stack.length - 1]
      if (top === undefined) return i === text.length ? null : i
      const c = text[i]
      if (c === ',') mode = top === '{' ? 'key' : 'value'
      else if ((top === '{' && c === '}') || (top === '[' && c === ']')) stack.pop()
      else return i
      i++
    } else if (mode === 'key') {
      if (text[i] !== '"' || !scanString()) return Math.min(i, text.length)
      skipWs()
      if (text[i] !== ':') return i
      i++
      mode = 'value'
    } else {
      const c = text[i]
      if (c === '{' || c === '[') {
        stack.push(c)
        i++
        skipWs()
        if (text[i] === (c === '{' ? '}' : ']')) {
          stack.pop()
          i++
          mode = 'after'
        } else mode = c === '{' ? 'key' : 'value'
        continue
      }
      if (c === '"') {
        if (!scanString()) return Math.min(i, text.length)
      } else if (text.startsWith('true', i)) i += 4
      else if (text.startsWith('false', i)) i += 5
      else if (text.startsWith('null', i)) i += 4
      else {
        JSON_NUMBER.lastIndex = i
        if (!JSON_NUMBER.test(text)) return i
        i = JSON_NUMBER.lastIndex
      }
      mode = 'after'
    }
  }
}
