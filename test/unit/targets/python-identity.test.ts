// A local python's installed distributions, for the run-cache key, kept between checks while
// nothing they were listed from changed (src/targets/python-identity.ts): a warm check after a
// package is installed, upgraded or removed, or a .pth adds a folder, lists again and gets
// another key, never the stale one. A real venv (no pip) of the test python; packages are
// dist-info folders made by hand, as pip leaves them.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readdirSync, realpathSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {PythonTarget} from '../../../src/targets/python.js'
import {pythonDistributions} from '../../../src/targets/python-identity.js'

const PYTHON = process.env['REPRO_TEST_PYTHON'] ?? '/usr/bin/python3'
const ENV = {PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8'}
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A venv without pip; its python and its site-packages folder. */
function venv(): {python: string; site: string; dir: string} | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-pyid-'))
  const r = spawnSync(PYTHON, ['-m', 'venv', '--without-pip', path.join(dir, 'env')], {encoding: 'utf8'})
  if (r.status !== 0) return null
  const lib = path.join(dir, 'env', 'lib')
  const site = path.join(lib, readdirSync(lib)[0]!, 'site-packages')
  return {python: path.join(dir, 'env', 'bin', 'python'), site, dir}
}

function install(site: string, name: string, version: string): void {
  const info = path.join(site, `${name}-${version}.dist-info`)
  mkdirSync(info)
  writeFileSync(path.join(info, 'METADATA'), `Metadata-Version: 2.1\nName: ${name}\nVersion: ${version}\n`)
}

const v = venv()

describe('python distributions memo', {skip: v ? false : `no venv from ${PYTHON}`}, () => {
  const {python, site, dir} = v!
  const memoDir = path.join(dir, 'memo')
  // no settling window: each change below is made before the listing that should see it
  const list = () => pythonDistributions(python, realpathSync(python), {env: ENV, memoDir, settleMs: 0})

  test('kept while nothing changed; every package change lists again, with another digest', async () => {
    const first = await list()
    assert.equal(first.memo, false)
    assert.deepEqual(await list(), {digest: first.digest, memo: true}, 'unchanged: the memo answers')

    install(site, 'torchlike', '1.0')
    await sleep(20)
    const installed = await list()
    assert.equal(installed.memo, false, 'a package installed: listed again')
    assert.notEqual(installed.digest, first.digest)
    assert.deepEqual(await list(), {digest: installed.digest, memo: true})

    // pip upgrade: the old dist-info goes, a new one comes
    renameSync(path.join(site, 'torchlike-1.0.dist-info'), path.join(site, 'torchlike-1.1.dist-info'))
    await sleep(20)
    const upgraded = await list()
    assert.equal(upgraded.memo, false, 'a package upgraded: listed again')
    assert.notEqual(upgraded.digest, installed.digest)

    // a .pth file puts another folder (with its own package) on sys.path
    const extra = path.join(dir, 'extra')
    mkdirSync(extra)
    install(extra, 'other', '2.0')
    writeFileSync(path.join(site, 'extra.pth'), `${extra}\n`)
    await sleep(20)
    const withPth = await list()
    assert.equal(withPth.memo, false, 'a .pth added: listed again')
    assert.notEqual(withPth.digest, upgraded.digest)
    assert.deepEqual(await list(), {digest: withPth.digest, memo: true})

    // that folder's package removed: the folder is watched too
    rmSync(path.join(extra, 'other-2.0.dist-info'), {recursive: true})
    await sleep(20)
    const removed = await list()
    assert.equal(removed.memo, false, 'a package removed from a .pth folder: listed again')
    assert.equal(removed.digest, upgraded.digest, 'the same packages as before the .pth folder had one')

    // files rewritten inside a package's dist-info (a reinstall of the same version)
    writeFileSync(path.join(site, 'torchlike-1.1.dist-info', 'RECORD'), 'x\n')
    await sleep(20)
    assert.equal((await list()).memo, false, 'a dist-info rewritten: listed again')
  })

  test('the warm check: PythonTarget.cacheIdentity changes after a package upgrade, memo or not', async () => {
    const target = new PythonTarget(python, {memoDir: path.join(dir, 'memo-target')})
    const before = await target.cacheIdentity()
    assert.deepEqual(await target.cacheIdentity(), before)
    install(site, 'numpylike', '1.24.2')
    await sleep(20)
    const after = await target.cacheIdentity()
    assert.notEqual(after['distributions'], before['distributions'])
    assert.deepEqual(await target.cacheIdentity(), after)
    // the same key as listing without any memo
    assert.deepEqual(await new PythonTarget(python).cacheIdentity(), after)
  })

  test('a change just before the listing began is not kept (it may have raced the listing)', async () => {
    const memo = path.join(dir, 'memo-settle')
    install(site, 'fresh', '0.1')
    const settle = () => pythonDistributions(python, realpathSync(python), {env: ENV, memoDir: memo, settleMs: 60_000})
    assert.equal((await settle()).memo, false)
    assert.equal((await settle()).memo, false, 'not written: a watched path changed within the settling window')
  })

  test("repro's working folder is not part of the listing", async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'repro-pyid-cwd-'))
    const plain = await pythonDistributions(python, realpathSync(python), {env: ENV})
    install(cwd, 'stray', '1.0')
    const saved = process.cwd()
    process.chdir(cwd)
    try {
      assert.equal((await pythonDistributions(python, realpathSync(python), {env: ENV})).digest, plain.digest)
    } finally {
      process.chdir(saved)
    }
  })
})
