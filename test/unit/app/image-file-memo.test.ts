// An image's entrypoint file is read with create + cp + rm once per image ID and then kept in the
// run cache (src/targets/image-file-memo.ts), so a warm check of an image with an entrypoint
// makes no container; a rebuilt image (another ID) is read again, never served the old answer.
// A fake docker CLI on PATH logs its calls.

import {describe, test, after} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {RunCache, type TargetMemoDirs} from '../../../src/app/cache.js'
import {targetsFromRefs} from '../../../src/app/targets.js'
import {readImageFileMemo, writeImageFileMemo} from '../../../src/targets/image-file-memo.js'
import {writeTar} from '../../../src/targets/tar.js'

const savedPath = process.env['PATH']
// the fake CLI answers, not the host daemon's socket (src/targets/docker-api.ts)
const savedApi = process.env['REPRO_DOCKER_API']
process.env['REPRO_DOCKER_API'] = '0'
after(() => {
  process.env['PATH'] = savedPath
  if (savedApi === undefined) delete process.env['REPRO_DOCKER_API']
  else process.env['REPRO_DOCKER_API'] = savedApi
})

const ID = (c: string) => `sha256:${c.repeat(64)}`
const SCRIPT = Buffer.from('#!/bin/sh\necho banner\nexec "$@"\n')

/** A fake docker: img:ep has ID `id` and entrypoint /entry.sh, whose file `cp` hands out as a tar with `mode`. */
function fakeDocker() {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'repro-fakedocker-ep-'))
  const state = path.join(bin, 'state.json')
  const tar = path.join(bin, 'entry.tar')
  const log = path.join(bin, 'log.txt')
  const set = (id: string, mode: number) => {
    writeFileSync(state, JSON.stringify({id}))
    writeFileSync(tar, writeTar([{name: 'entry.sh', data: SCRIPT, mode}]))
  }
  set(ID('a'), 0o755)
  writeFileSync(
    path.join(bin, 'docker'),
    `#!${process.execPath}
const fs = require('node:fs')
const args = process.argv.slice(2)
fs.appendFileSync(${JSON.stringify(log)}, args[0] + '\\n')
const {id} = JSON.parse(fs.readFileSync(${JSON.stringify(state)}, 'utf8'))
if (args[0] === 'version') { console.log('28.2.2 linux/amd64'); process.exit(0) }
if (args[0] === 'image' && args[1] === 'inspect') {
  console.log(JSON.stringify(args.slice(2).map((name) => ({Id: id, RepoTags: [name], Architecture: 'amd64', Os: 'linux',
    Config: {Entrypoint: ['/entry.sh'], Env: ['PATH=/usr/bin']}}))))
  process.exit(0)
}
if (args[0] === 'create') { console.log('c0ffee'); process.exit(0) }
if (args[0] === 'cp') { process.stdout.write(fs.readFileSync(${JSON.stringify(tar)})); process.exit(0) }
process.exit(0)
`,
  )
  chmodSync(path.join(bin, 'docker'), 0o755)
  return {
    bin,
    set,
    creates: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter((c) => c === 'create').length
        : 0,
  }
}

const SETTINGS = {engine: 'docker', device: 'cpu', memory: '4g', cpus: '2', 'pids-limit': 1024}
const REFS = [{kind: 'image' as const, value: 'img:ep'}]

async function identity(memos?: TargetMemoDirs) {
  const [spec] = await targetsFromRefs(REFS, SETTINGS, memos)
  return spec!.target.cacheIdentity()
}

describe('image entrypoint file memo', () => {
  test('read once per image ID: a second check (a new process) makes no container, and decides the same', async () => {
    const docker = fakeDocker()
    process.env['PATH'] = docker.bin
    const cache = new RunCache(mkdtempSync(path.join(os.tmpdir(), 'repro-epmemo-')))
    try {
      const first = await identity(cache.targetMemoDirs())
      assert.equal(docker.creates(), 1)
      const second = await identity(cache.targetMemoDirs())
      assert.equal(docker.creates(), 1, 'the memo answered: no create, cp, rm')
      assert.deepEqual(second, first)
    } finally {
      process.env['PATH'] = savedPath
    }
  })

  test('a rebuilt image (another ID) is read again: its entrypoint lost the x bit, and the check says so', async () => {
    const docker = fakeDocker()
    process.env['PATH'] = docker.bin
    const cache = new RunCache(mkdtempSync(path.join(os.tmpdir(), 'repro-epmemo-')))
    try {
      await identity(cache.targetMemoDirs())
      docker.set(ID('b'), 0o644)
      await assert.rejects(identity(cache.targetMemoDirs()), /is not executable/)
      assert.equal(docker.creates(), 2)
    } finally {
      process.env['PATH'] = savedPath
    }
  })

  test('without a memo folder (--no-cache) every target reads the image', async () => {
    const docker = fakeDocker()
    process.env['PATH'] = docker.bin
    try {
      await identity()
      await identity()
      assert.equal(docker.creates(), 2)
    } finally {
      process.env['PATH'] = savedPath
    }
  })

  test('only content-addressed IDs are kept; a damaged memo is not read', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-epmemo-'))
    const head = {type: 'file' as const, mode: 0o755, size: 3, head: Buffer.from('abc')}
    await writeImageFileMemo(dir, {engine: 'docker', imageId: 'img:latest', paths: ['/e']}, head)
    assert.equal(await readImageFileMemo(dir, {engine: 'docker', imageId: 'img:latest', paths: ['/e']}), null)
    const key = {engine: 'docker', imageId: ID('c'), paths: ['/e']}
    await writeImageFileMemo(dir, key, head)
    assert.deepEqual(await readImageFileMemo(dir, key), head)
    assert.equal(await readImageFileMemo(dir, {...key, engine: 'podman'}), null, 'another engine reads its own')
    // one multi-platform image ID, two engines on other platforms: each reads its own variant
    const amd = {...key, engine: 'docker linux/amd64'}
    await writeImageFileMemo(dir, amd, head)
    assert.deepEqual(await readImageFileMemo(dir, amd), head)
    assert.equal(await readImageFileMemo(dir, {...key, engine: 'docker linux/arm64'}), null, 'another platform reads its own')
    assert.equal(await readImageFileMemo(dir, {...key, paths: ['/other']}), null, 'other paths: another memo')
    await writeImageFileMemo(dir, key, 'missing')
    assert.equal(await readImageFileMemo(dir, key), 'missing')
  })
})
