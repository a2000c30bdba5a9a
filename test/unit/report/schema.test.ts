// The published JSON Schema is generated from the zod schema: the committed file must be current.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {reportJsonSchemaText} from '../../../src/report/schema.js'
import {ROOT} from './sample.js'

test('schemas/report.schema.json equals the generated schema (run scripts/gen-schema.mjs)', () => {
  const committed = readFileSync(path.join(ROOT, 'schemas/report.schema.json'), 'utf8')
  assert.equal(committed, reportJsonSchemaText())
  const schema = JSON.parse(committed)
  assert.equal(schema.properties.schema.const, 'repro.report/1')
  assert.ok(schema.$defs.number.anyOf.some((x: {enum?: string[]}) => x.enum?.includes('Infinity')))
})
