#!/usr/bin/env node
// Re-renders every reports/examples/<case>/report.json into report.md, report.html and
// report.junit.xml beside it (build first: `npm run build && node scripts/gen-examples.mjs`).
// A unit test renders each example again and requires byte equality with the committed files.

import {readdirSync, writeFileSync, existsSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dist = (p) => path.join(root, 'dist/src/report', p)
const {loadReport} = await import(dist('load.js'))
const {renderMarkdown} = await import(dist('markdown.js'))
const {renderHtml} = await import(dist('html.js'))
const {renderJunit} = await import(dist('junit.js'))

const examples = path.join(root, 'reports/examples')
for (const name of readdirSync(examples).sort()) {
  const dir = path.join(examples, name)
  const source = path.join(dir, 'report.json')
  if (!existsSync(source)) continue
  const report = await loadReport(source)
  writeFileSync(path.join(dir, 'report.md'), renderMarkdown(report))
  writeFileSync(path.join(dir, 'report.html'), await renderHtml(report))
  writeFileSync(path.join(dir, 'report.junit.xml'), renderJunit(report))
  console.log(`rendered reports/examples/${name}`)
}
