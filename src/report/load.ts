// Reads a saved report.json back: size-capped, parsed once, validated with the zod schema.
// Any problem is one ReproError line naming the file and what to do.

import {promises as fs} from 'node:fs'
import type {AuditReport} from '../core/report.js'
import {ReproError} from '../errors.js'
import {cleanText} from './escape.js'
import {reportSchema} from './schema.js'
import {PARSE_ONCE} from '../artifacts/parse-once.js'

export const MAX_REPORT_BYTES = 64 * 1024 * 1024

const HINT = 'pass a report.json written by `repro audit` (or `repro compare --json > report.json`)'

export async function loadReport(file: string): Promise<AuditReport> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(file, 'r')
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EISDIR'
          ? 'is a directory'
          : code === 'EACCES'
            ? 'permission denied'
            : `cannot be opened (${code ?? 'error'})`
    throw new ReproError(why, {subject: file, hint: HINT})
  }
  let bytes: Buffer
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw new ReproError('is not a regular file', {subject: file, hint: HINT})
    if (stat.size > MAX_REPORT_BYTES) throw tooLarge(file)
    // read at most cap + 1 bytes: a file that grows while we read is still caught
    const buf = Buffer.alloc(Math.min(stat.size, MAX_REPORT_BYTES) + 1)
    let n = 0
    for (;;) {
      const {bytesRead} = await handle.read(buf, n, buf.length - n, n)
      if (bytesRead === 0) break
      n += bytesRead
      if (n === buf.length) break
    }
    if (n > MAX_REPORT_BYTES) throw tooLarge(file)
    bytes = buf.subarray(0, n)
  } catch (e) {
    if (e instanceof ReproError) throw e
    throw new ReproError(`cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {subject: file, hint: HINT})
  } finally {
    await handle.close()
  }
  return parseReport(bytes.toString('utf8'), file)
}

function tooLarge(file: string): ReproError {
  return new ReproError(`is larger than ${MAX_REPORT_BYTES / 1024 / 1024} MiB, too large for a report`, {subject: file, hint: HINT})
}

/** Parses and validates report text; `file` only names the source in errors. */
export function parseReport(text: string, file: string): AuditReport {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (e) {
    throw new ReproError(`is not valid JSON (${cleanText((e as Error).message, 120)})`, {subject: file, hint: HINT})
  }
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const obj = raw as Record<string, unknown>
    if ('error' in obj && !('schema' in obj))
      throw new ReproError('holds an error result from repro, not a report', {subject: file, hint: HINT})
    if (typeof obj['schema'] === 'string' && obj['schema'] !== 'repro.report/1' && obj['schema'].startsWith('repro.report/')) {
      throw new ReproError(`is a report in schema ${cleanText(obj['schema'], 40)}, this repro reads repro.report/1`, {
        subject: file,
        hint: 'render it with the repro version that wrote it',
      })
    }
  }
  const parsed = reportSchema.safeParse(raw, PARSE_ONCE)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue ? formatPath(issue.path) : ''
    const what = issue ? cleanText(issue.message, 160) : 'invalid'
    const more = parsed.error.issues.length > 1 ? ` (and ${parsed.error.issues.length - 1} more problem(s))` : ''
    throw new ReproError(`is not a valid repro report: ${where ? `${where}: ` : ''}${what}${more}`, {subject: file, hint: HINT})
  }
  // The schema checked every field a renderer reads; the rest passes through untouched.
  return inSourceOrder(raw, parsed.data) as AuditReport
}

/** The parsed value with object keys in the file's order, so re-rendered JSON matches its source. */
function inSourceOrder(raw: unknown, parsed: unknown): unknown {
  if (Array.isArray(raw) && Array.isArray(parsed)) return parsed.map((v, i) => inSourceOrder(raw[i], v))
  if (!isPlainObject(raw) || !isPlainObject(parsed)) return parsed
  const out: Record<string, unknown> = {}
  for (const k of Object.keys(raw)) if (Object.hasOwn(parsed, k)) out[k] = inSourceOrder(raw[k], parsed[k])
  for (const k of Object.keys(parsed)) if (!Object.hasOwn(out, k)) out[k] = parsed[k]
  return out
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function formatPath(path: PropertyKey[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `${out ? '.' : ''}${cleanText(String(p), 60)}`
  return out
}
