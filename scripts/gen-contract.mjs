#!/usr/bin/env node
// Writes every file generated from a TypeScript table or schema (build first: `npm run
// gen:contract` does both). Unit tests check each committed file is current.
//   schemas/report.schema.json                  src/report/schema.ts
//   schemas/{probe-config,run,trace,fingerprint}.schema.json   src/artifacts/schemas.ts
//   probe/repro_probe/knob_table.json           src/core/knobs.ts (the probe's copy of the knob table)
//   docs/knobs.md                               src/core/knobs.ts (the knob reference)

import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const load = (p) => import(path.join(root, 'dist/src', p))
const {reportJsonSchemaText} = await load('report/schema.js')
const {artifactJsonSchemaTexts} = await load('artifacts/schemas.js')
const {probeKnobTableText, knobsMarkdown} = await load('core/knob-docs.js')

const files = {
  'schemas/report.schema.json': reportJsonSchemaText(),
  ...Object.fromEntries(Object.entries(artifactJsonSchemaTexts()).map(([name, text]) => [`schemas/${name}`, text])),
  'probe/repro_probe/knob_table.json': probeKnobTableText(),
  'docs/knobs.md': knobsMarkdown(),
}
for (const [name, text] of Object.entries(files)) {
  writeFileSync(path.join(root, name), text)
  console.log(`wrote ${name}`)
}
