// Turns CSV text into tabular data: numeric columns → float32, any other column categorical
// (categories indexed in order of first appearance), the label column → class indices.

import type {TabularData} from './data.js'

export class CsvError extends Error {
  override name = 'CsvError'
}

/** RFC 4180 records: quoted fields, doubled quotes, CRLF or LF. */
export function parseCsvRecords(text: string): string[][] {
  const records: string[][] = []
  let field = ''
  let record: string[] = []
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"'
          i++
        } else quoted = false
      } else field += ch
    } else if (ch === '"' && field === '') quoted = true
    else if (ch === ',') {
      record.push(field)
      field = ''
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++
      record.push(field)
      field = ''
      if (!(record.length === 1 && record[0] === '')) records.push(record)
      record = []
    } else field += ch
  }
  if (quoted) throw new CsvError('unterminated quoted field')
  if (field !== '' || record.length > 0) {
    record.push(field)
    records.push(record)
  }
  return records
}

const NUMBER = /^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?)$/

export function tabularFromCsv(text: string, labelColumn: string, sourceName: string): TabularData {
  const records = parseCsvRecords(text)
  const header = records.shift()
  if (!header || header.length === 0) throw new CsvError('the file has no header row')
  const labelIndex = header.indexOf(labelColumn)
  if (labelIndex < 0) throw new CsvError(`no column named ${JSON.stringify(labelColumn)} (columns: ${header.slice(0, 20).join(', ')})`)
  if (records.length < 10) throw new CsvError(`only ${records.length} data rows; at least 10 are needed`)
  records.forEach((rec, i) => {
    if (rec.length !== header.length) throw new CsvError(`row ${i + 2} has ${rec.length} fields, the header has ${header.length}`)
  })
  const features = header.map((name, index) => ({name, index})).filter((c) => c.index !== labelIndex)
  const isNumeric = (index: number) => records.every((rec) => NUMBER.test(rec[index]!.trim()))
  const numericCols = features.filter((c) => isNumeric(c.index))
  const categoricalCols = features.filter((c) => !isNumeric(c.index))
  const rows = records.length
  const numeric = new Float32Array(rows * numericCols.length)
  const categorical = new BigInt64Array(rows * categoricalCols.length)
  const label = new BigInt64Array(rows)
  const vocabularies = categoricalCols.map(() => new Map<string, number>())
  const classes = new Map<string, number>()
  const indexOf = (vocab: Map<string, number>, value: string) => {
    let idx = vocab.get(value)
    if (idx === undefined) {
      idx = vocab.size
      vocab.set(value, idx)
    }
    return idx
  }
  records.forEach((rec, r) => {
    numericCols.forEach((c, j) => {
      numeric[r * numericCols.length + j] = Number(rec[c.index]!.trim())
    })
    categoricalCols.forEach((c, j) => {
      categorical[r * categoricalCols.length + j] = BigInt(indexOf(vocabularies[j]!, rec[c.index]!))
    })
    label[r] = BigInt(indexOf(classes, rec[labelIndex]!.trim()))
  })
  if (classes.size < 2) throw new CsvError(`label column ${JSON.stringify(labelColumn)} has fewer than 2 distinct values`)
  return {
    rows,
    numericColumns: numericCols.map((c) => c.name),
    categoricalColumns: categoricalCols.map((c, j) => ({name: c.name, cardinality: vocabularies[j]!.size})),
    classes: classes.size,
    labelColumn,
    source: `csv:${sourceName}`,
    numeric,
    categorical,
    label,
  }
}
