// Writes a report in the requested formats into a directory (write beside, then rename: a
// reader never sees half a report). Shared by `repro audit` and `repro report`.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {AuditReport} from '../core/report.js'
import {timed} from '../env/timings.js'
import {ReproError} from '../errors.js'
import {renderHtml} from '../report/html.js'
import {renderJson} from '../report/json.js'
import {renderJunit} from '../report/junit.js'
import {renderMarkdown} from '../report/markdown.js'

export const REPORT_FORMATS = {
  md: {file: 'report.md', render: async (r: AuditReport) => renderMarkdown(r)},
  html: {file: 'report.html', render: (r: AuditReport) => renderHtml(r)},
  junit: {file: 'report.junit.xml', render: async (r: AuditReport) => renderJunit(r)},
  json: {file: 'report.json', render: async (r: AuditReport) => renderJson(r)},
} as const
export type ReportFormat = keyof typeof REPORT_FORMATS
export const ALL_FORMATS: ReportFormat[] = ['json', 'md', 'html', 'junit']

export function parseFormats(value: string, subject: string): ReportFormat[] {
  const names = value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)
  const bad = names.filter((n) => !(n in REPORT_FORMATS))
  if (names.length === 0 || bad.length > 0) {
    throw new ReproError(
      `unknown report format ${bad.length ? bad.map((b) => JSON.stringify(b.slice(0, 40))).join(', ') : '(none given)'}`,
      {subject, hint: `use a comma list of ${Object.keys(REPORT_FORMATS).join(', ')}`},
    )
  }
  return [...new Set(names as ReportFormat[])]
}

export async function writeReportFiles(report: AuditReport, dir: string, formats: ReportFormat[]): Promise<string[]> {
  try {
    await fs.mkdir(dir, {recursive: true})
  } catch (e) {
    throw new ReproError(`cannot create the output directory (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
      subject: dir,
      hint: 'pass a writable --out DIR',
    })
  }
  // render every format first, then write them side by side
  const rendered: {file: string; text: string; name: string}[] = []
  for (const f of formats)
    rendered.push({
      file: path.join(dir, REPORT_FORMATS[f].file),
      name: REPORT_FORMATS[f].file,
      text: await timed('render', REPORT_FORMATS[f].file, async () => REPORT_FORMATS[f].render(report)),
    })
  await timed('write reports', 'report files', () => Promise.all(rendered.map((r) => writeAtomically(dir, r.file, r.name, r.text))))
  return rendered.map((r) => r.file)
}

async function writeAtomically(dir: string, file: string, name: string, text: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`
  try {
    await fs.writeFile(tmp, text)
    await fs.rename(tmp, file)
  } catch (e) {
    await fs.rm(tmp, {force: true})
    throw new ReproError(`cannot write ${name} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
      subject: dir,
      hint: 'pass a writable --out DIR',
    })
  }
}
