import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, mkdirSync, readdirSync, writeFileSync, readFileSync, existsSync, utimesSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {cacheKey, canonicalJson, probeHash, RunCache} from '../../../src/app/cache.js'

function runDir(content: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'repro-run-'))
  for (const f of ['fingerprint.json', 'run.json', 'trace.json', 'tensors.safetensors']) writeFileSync(path.join(d, f), `${f}:${content}`)
  return d
}

describe('run cache', () => {
  test('the probe hash covers every shipped file: data files and subpackages too, not bytecode', async () => {
    const probe = (files: Record<string, string>) => {
      const d = mkdtempSync(path.join(os.tmpdir(), 'repro-probe-'))
      for (const [name, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(d, name)), {recursive: true})
        writeFileSync(path.join(d, name), text)
      }
      return probeHash(d)
    }
    const base = {'a.py': 'x', 'knob_table.json': '{}', 'workloads/cnn.py': 'y'}
    const h = await probe(base)
    assert.notEqual(await probe({...base, 'knob_table.json': '{"threads": 1}'}), h, 'a changed knob table')
    assert.notEqual(await probe({...base, 'workloads/cnn.py': 'z'}), h, 'a changed module in a subpackage')
    assert.equal(await probe({...base, '__pycache__/a.cpython-311.pyc': 'bytecode'}), h, 'bytecode does not count')
  })

  test('keys differ when any nested value differs (image ID, knobs, host)', () => {
    const base = {v: 1, target: {kind: 'docker', image_id: 'sha256:aaa'}, config: {knobs: {threads: 1}}, host: {cpu: 'x'}, tag: 'r1'}
    const k = cacheKey(base)
    assert.notEqual(cacheKey({...base, target: {kind: 'docker', image_id: 'sha256:bbb'}}), k)
    assert.notEqual(cacheKey({...base, config: {knobs: {threads: 2}}}), k)
    assert.notEqual(cacheKey({...base, host: {cpu: 'y'}}), k)
    assert.notEqual(cacheKey({...base, tag: 'r2'}), k)
    assert.equal(
      cacheKey({tag: 'r1', host: {cpu: 'x'}, config: {knobs: {threads: 1}}, target: {image_id: 'sha256:aaa', kind: 'docker'}, v: 1}),
      k,
      'key order does not matter',
    )
  })

  test('canonical JSON sorts keys at every depth', () => {
    assert.equal(canonicalJson({b: {d: 1, c: [2, {f: 1, e: 0}]}, a: null}), '{"a":null,"b":{"c":[2,{"e":0,"f":1}],"d":1}}')
  })

  test('store then restore round-trips a run; a missing key restores nothing', async () => {
    const cache = new RunCache(mkdtempSync(path.join(os.tmpdir(), 'repro-cache-')))
    await cache.store('k1', runDir('one'))
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'repro-out-')), 'run')
    assert.equal(await cache.restore('k1', out), true)
    assert.equal(readFileSync(path.join(out, 'run.json'), 'utf8'), 'run.json:one')
    assert.equal(await cache.restore('nope', path.join(out, 'x')), false)
  })

  test('a second store of the same key (another process won the race) keeps one complete entry', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-cache-'))
    const a = new RunCache(dir)
    const b = new RunCache(dir)
    await Promise.all([a.store('same', runDir('a')), b.store('same', runDir('b'))])
    const entries = readdirSync(dir)
    assert.deepEqual(entries.sort(), ['CACHEDIR.TAG', 'same'], 'no temp directories left behind')
    assert.match(readFileSync(path.join(dir, 'CACHEDIR.TAG'), 'utf8'), /^Signature: 8a477f597d28d172789f06886806bc55\n/)
    assert.ok(existsSync(path.join(dir, 'same', 'COMPLETE')))
    assert.match(readFileSync(path.join(dir, 'same', 'run.json'), 'utf8'), /^run\.json:(a|b)$/)
  })

  test('eviction removes least-recently-used entries until the cache fits', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-cache-'))
    const big = new RunCache(dir, 1e9)
    for (const k of ['old', 'mid', 'new']) await big.store(k, runDir(k.repeat(100)))
    const t = Date.now() / 1000
    utimesSync(path.join(dir, 'old', 'COMPLETE'), t - 300, t - 300)
    utimesSync(path.join(dir, 'mid', 'COMPLETE'), t - 200, t - 200)
    utimesSync(path.join(dir, 'new', 'COMPLETE'), t - 100, t - 100)
    const entrySize = readdirSync(path.join(dir, 'new')).reduce((s, f) => s + readFileSync(path.join(dir, 'new', f)).length, 0)
    const removed = await new RunCache(dir, entrySize * 2 + 10).evict()
    assert.equal(removed, 1)
    assert.deepEqual(readdirSync(dir).sort(), ['CACHEDIR.TAG', 'mid', 'new'])
    mkdirSync(path.join(dir, '.tmp-ignored'))
    assert.equal(await new RunCache(dir, 0).evict(), 2)
  })
})
