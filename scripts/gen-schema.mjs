#!/usr/bin/env node
// Writes schemas/report.schema.json from the zod schema in src/report/schema.ts (build first:
// `npm run build && node scripts/gen-schema.mjs`). A unit test checks the committed file is current.

import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const {reportJsonSchemaText} = await import(path.join(root, 'dist/src/report/schema.js'))
const file = path.join(root, 'schemas/report.schema.json')
writeFileSync(file, reportJsonSchemaText())
console.log(`wrote ${path.relative(root, file)}`)
