// Every generated file is current: the published JSON Schemas (report, probe config, run, trace,
// fingerprint), the probe's copy of the knob table and docs/knobs.md. Regenerate with
// `npm run gen:contract`.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {artifactJsonSchemaTexts} from '../../src/artifacts/schemas.js'
import {knobsMarkdown, probeKnobTableText} from '../../src/core/knob-docs.js'
import {KNOBS} from '../../src/core/knobs.js'
import {reportJsonSchemaText} from '../../src/report/schema.js'
import {ROOT} from './report/sample.js'

const committed = (file: string) => readFileSync(path.join(ROOT, file), 'utf8')

test('schemas/report.schema.json equals the generated schema', () => {
  assert.equal(committed('schemas/report.schema.json'), reportJsonSchemaText())
  const schema = JSON.parse(committed('schemas/report.schema.json'))
  assert.equal(schema.properties.schema.const, 'repro.report/1')
  assert.ok(schema.$defs.number.anyOf.some((x: {enum?: string[]}) => x.enum?.includes('Infinity')))
})

test('the probe contract schemas equal the generated ones', () => {
  for (const [name, text] of Object.entries(artifactJsonSchemaTexts())) assert.equal(committed(`schemas/${name}`), text, name)
  const config = JSON.parse(committed('schemas/probe-config.schema.json'))
  assert.deepEqual(Object.keys(config.properties.knobs.properties), [...KNOBS.map((k) => k.name), 'env'])
})

test('the probe’s knob table and docs/knobs.md are generated from src/core/knobs.ts', () => {
  assert.equal(committed('probe/repro_probe/knob_table.json'), probeKnobTableText())
  assert.equal(committed('docs/knobs.md'), knobsMarkdown())
  for (const k of KNOBS) assert.match(committed('docs/knobs.md'), new RegExp(`\\| \`${k.name}\` \\|`))
})
