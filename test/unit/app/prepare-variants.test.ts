// `repro prepare --variants FILE`: the variants file parsed, and the variants as the audit's own
// targets (one --python target each, its settings as --set N:…), through targetsFromRefs.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {parseVariants, variantTargets} from '../../../src/app/prepare.js'
import {targetsFromRefs} from '../../../src/app/targets.js'
import {ReproError} from '../../../src/errors.js'

const SETTINGS = {engine: 'auto', device: 'cpu', memory: '8g', cpus: '2', 'pids-limit': 4096}

describe('repro prepare --variants', () => {
  test('each variant is a python target with its own settings; a --set given comes first', async () => {
    const variants = parseVariants(
      JSON.stringify([
        {name: 'default', set: []},
        {name: 'det', set: ['deterministic=true', 'env.CUBLAS_WORKSPACE_CONFIG=:4096:8']},
        {name: 'threads-1', set: ['threads=1']},
      ]),
      'v.json',
    )
    const t = variantTargets(variants, '/usr/bin/python3', ['threads=2'])
    assert.deepEqual(t.names, ['default', 'det', 'threads-1'])
    assert.deepEqual(t.set, ['threads=2', '2:deterministic=true', '2:env.CUBLAS_WORKSPACE_CONFIG=:4096:8', '3:threads=1'])
    const specs = await targetsFromRefs(t.refs, {...SETTINGS, set: t.set})
    assert.deepEqual(
      specs.map((s) => [s.target.name, s.knobs.threads, s.knobs.deterministic, s.knobs.env]),
      [
        ['python:/usr/bin/python3', 2, false, {}],
        ['python:/usr/bin/python3', 2, true, {CUBLAS_WORKSPACE_CONFIG: ':4096:8'}],
        ['python:/usr/bin/python3', 1, false, {}],
      ],
    )
  })

  test('a bad file is one ReproError naming what is wrong', () => {
    const bad = (text: string, message: RegExp) =>
      assert.throws(
        () => parseVariants(text, 'v.json'),
        (e) => e instanceof ReproError && message.test(e.message),
      )
    bad('nope', /not JSON/)
    bad('[]', /1 to 100 variants/)
    bad('[{"name": "a b", "set": []}]', /variant 1 is not/)
    bad('[{"name": "a", "set": []}, {"name": "a", "set": []}]', /two variants are named a/)
    bad('[{"name": "a", "set": ["2:threads=1"]}]', /variant a: .*names a target/)
    bad('[{"name": "a", "set": ["nope=1"]}]', /variant a: unknown knob/)
  })
})
