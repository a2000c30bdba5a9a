// --resume's decision (core/resume.ts): a stored run is reused only when its completion record
// equals the one the run would get now, field by field; otherwise the reason names what differs.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {defaultProbeConfig} from '../../../src/core/config.js'
import {COMPLETION_SCHEMA, type CompletionRecord, completionMismatch, resumeLine, summarizeResume} from '../../../src/core/resume.js'

const PROBE = 'a'.repeat(64)

function image(over: Partial<CompletionRecord['target']> = {}): CompletionRecord {
  return {
    schema: COMPLETION_SCHEMA,
    target: {name: 'repro-fixture:bookworm', kind: 'docker', image_id: 'sha256:1111aaaa2222bbbb', python: null, ...over},
    probe: PROBE,
    config: defaultProbeConfig({file: 'data.safetensors', sha256: 'd'.repeat(64)}, 1234, 'mlp'),
  }
}

/** A deep copy through JSON, as the stored record is read back from complete.json. */
const stored = (r: CompletionRecord): CompletionRecord => JSON.parse(JSON.stringify(r))

describe('completionMismatch', () => {
  test('the same record, even with keys in another order, is a reuse', () => {
    const now = image()
    const back = stored(now)
    back.config = Object.fromEntries(Object.entries(back.config).reverse()) as CompletionRecord['config']
    assert.equal(completionMismatch(now, back), null)
  })

  test('another image ID behind the same name reruns, naming both IDs', () => {
    const reason = completionMismatch(image({image_id: 'sha256:3333cccc4444dddd'}), stored(image()))
    assert.match(reason ?? '', /image 1111aaaa2222.*now 3333cccc4444/)
  })

  test('another target, interpreter, or probe reruns', () => {
    assert.match(
      completionMismatch(image({name: 'repro-fixture:trixie'}), stored(image())) ?? '',
      /another target \(repro-fixture:bookworm\)/,
    )
    const py = (path: string) => image({name: `python:${path}`, kind: 'python', image_id: null, python: path})
    assert.match(completionMismatch(py('/usr/bin/python3'), stored(py('/opt/venv/bin/python'))) ?? '', /another target/)
    const samePathOtherRecord = stored(py('/usr/bin/python3'))
    samePathOtherRecord.target.python = '/usr/bin/python3.11'
    assert.match(completionMismatch(py('/usr/bin/python3'), samePathOtherRecord) ?? '', /interpreter \/usr\/bin\/python3\.11/)
    assert.equal(completionMismatch({...image(), probe: 'b'.repeat(64)}, stored(image())), 'the probe changed since it ran')
  })

  test('each part of the probe config reruns with its own reason', () => {
    const base = image()
    const cases: [string, (c: CompletionRecord['config']) => void, RegExp][] = [
      ['data', (c) => (c.data.sha256 = 'e'.repeat(64)), /data differs/],
      ['workload', (c) => (c.workload = 'cnn'), /workload cnn/],
      ['seed', (c) => (c.train.seed = 1235), /seed 1235, this audit seed 1234/],
      ['knob', (c) => (c.knobs = {...c.knobs, threads: 2}), /knobs differ \(threads\)/],
      ['env knob', (c) => (c.knobs = {...c.knobs, env: {OMP_NUM_THREADS: '1'}}), /knobs differ \(env\)/],
      ['trace', (c) => (c.trace = {...c.trace, store_steps: [0, 3]}), /trace settings differ \(store_steps\)/],
      ['epochs', (c) => (c.train.epochs = 9), /training settings differ \(epochs\)/],
      ['model', (c) => (c.model.hidden = [8]), /probe config differs \(model\)/],
    ]
    for (const [what, change, reason] of cases) {
      const old = stored(base)
      change(old.config)
      assert.match(completionMismatch(base, old) ?? 'reused', reason, what)
    }
  })
})

describe('summarizeResume and resumeLine', () => {
  test('counts the reused cells and names the ones that ran again', () => {
    const s = summarizeResume('/tmp/a', [
      {dir: 't1-r1', decision: {reuse: true}},
      {dir: 't1-r2', decision: {reuse: false, reason: 'its run directory is missing'}},
      {dir: 't2-r1', decision: {reuse: true}},
      {dir: 't2-r2', decision: {reuse: true}},
    ])
    assert.deepEqual(s, {out_dir: '/tmp/a', planned: 4, resumed: 3, reran: [{dir: 't1-r2', reason: 'its run directory is missing'}]})
    assert.equal(resumeLine(s), 'Resumed 3 of 4 runs from --out /tmp/a; 1 ran again (t1-r2: its run directory is missing)')
    assert.equal(
      resumeLine(summarizeResume('/d', [{dir: 't1-r1', decision: {reuse: true}}])),
      'Resumed 1 of 1 run from --out /d; none ran again',
    )
  })
})
