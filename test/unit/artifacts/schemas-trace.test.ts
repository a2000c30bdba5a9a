// The hand-written trace check (plainTrace, src/artifacts/schemas.ts) against zod's traceSchema:
// whatever it passes, zod passes too and returns equal; every recorded trace takes it; randomly
// broken traces never get past it unless zod takes them as they are.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readdirSync, readFileSync, statSync} from 'node:fs'
import path from 'node:path'
import {PARSE_ONCE} from '../../../src/artifacts/parse-once.js'
import {plainTrace, traceSchema} from '../../../src/artifacts/schemas.js'
import {mulberry32} from '../../../src/core/data.js'

function traces(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name)
    if (statSync(p).isDirectory()) out.push(...traces(p))
    else if (name === 'trace.json') out.push(p)
  }
  return out
}

const SHA = 'ab'.repeat(32)
const valid = () => ({
  schema: 'repro.trace/1',
  steps: [
    {step: 'init', epoch: null, stored: true, entries: [{name: 'param/w', dtype: 'float32', shape: [2, 3], sha256: SHA, nonfinite: 0}]},
    {
      step: 0,
      epoch: 0,
      cell: 3,
      stored: false,
      entries: [
        {name: 'fwd/a.0', dtype: 'bfloat16', shape: [], sha256: SHA, nonfinite: 2},
        {name: 'loss', dtype: 'float64', shape: [1], sha256: SHA, nonfinite: 0},
      ],
    },
  ],
  capture: 'boundaries',
})

// values a field can be broken into: wrong types, out-of-range numbers, bad strings
const POOL: unknown[] = [
  null,
  undefined,
  -1,
  0,
  1,
  1.5,
  2 ** 53,
  -0,
  100_001,
  '',
  'x',
  'init',
  'a|b',
  'a\u0007b',
  'a\u0085b',
  'x'.repeat(513),
  SHA.toUpperCase(),
  SHA.slice(1),
  'float8',
  'full',
  true,
  [],
  [1, -1],
  [0, 0, 0, 0, 0, 0, 0, 0, 0],
  {},
  'repro.trace/2',
]

/** Sets one random field (or adds one key) somewhere in t to a random pool value. */
function mutate(t: Record<string, unknown>, r: () => number): void {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!
  const value = pick(POOL)
  // where: the trace, a step or an entry (as long as the ones above are still what they were)
  const places: Record<string, unknown>[] = [t]
  const steps = t['steps']
  const step = Array.isArray(steps) && steps.length ? pick(steps) : null
  if (step && typeof step === 'object') {
    places.push(step)
    const entries = step['entries']
    const entry = Array.isArray(entries) && entries.length ? pick(entries) : null
    if (entry && typeof entry === 'object') places.push(entry)
  }
  const where = pick(places)
  const keys = [...Object.keys(where), 'extra', 'cell', 'capture']
  const key = pick(keys)
  if (value === undefined) delete where[key]
  else where[key] = value
}

describe('plainTrace vs traceSchema', () => {
  test('every recorded trace (fixtures/, gpu-h200 included) takes the hand-written path, equal to what zod returns', () => {
    let valid = 0
    for (const file of traces(path.join(process.cwd(), 'fixtures'))) {
      let raw: unknown
      try {
        raw = JSON.parse(readFileSync(file, 'utf8'))
      } catch {
        continue // a deliberately truncated artifact (hostile-artifact fixtures)
      }
      const z = traceSchema.safeParse(raw, PARSE_ONCE)
      const fast = plainTrace(raw)
      if (!z.success) {
        assert.equal(fast, null, file)
        continue
      }
      valid++
      assert.ok(fast, file)
      assert.deepEqual(fast, z.data, file)
    }
    assert.ok(valid > 20, `${valid} valid traces`)
  })

  test('20000 randomly broken traces: what it passes, zod passes and returns equal; what zod rejects, it rejects', () => {
    const r = mulberry32(28)
    let passed = 0
    let rejected = 0
    for (let i = 0; i < 20000; i++) {
      const t = valid() as unknown as Record<string, unknown>
      const n = 1 + Math.floor(r() * 3)
      for (let k = 0; k < n; k++) mutate(t, r)
      const z = traceSchema.safeParse(t, PARSE_ONCE)
      const fast = plainTrace(t)
      if (fast) {
        passed++
        assert.ok(z.success, `zod rejects what plainTrace passed: ${JSON.stringify(t)}`)
        assert.deepEqual(fast, z.data)
      } else if (!z.success) rejected++
    }
    // both kinds occur often enough for the property to mean something
    assert.ok(passed > 200 && rejected > 5000, `${passed} passed, ${rejected} rejected by both`)
  })

  test('extra keys: dropped at the top (entry_order) as zod drops them; in a step or entry left to zod', () => {
    const top = {...valid(), entry_order: 'forward outputs, …'}
    assert.deepEqual(plainTrace(top), traceSchema.parse(top, PARSE_ONCE))
    assert.equal('entry_order' in plainTrace(top)!, false)
    const t = valid() as unknown as {steps: Record<string, unknown>[]}
    t.steps[0]!['note'] = 'x'
    assert.equal(plainTrace(t), null)
    assert.equal(traceSchema.safeParse(t, PARSE_ONCE).success, true)
  })
})
