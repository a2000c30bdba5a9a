// Image targets' identities from one batched `image inspect` (src/app/targets.ts, a fake docker
// CLI on PATH): each image gets its own ID (never its neighbour's), a missing image falls back to
// each target's own inspect, and an image rebuilt under the same tag gives another run-cache key.

import {describe, test, after} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {cacheKey} from '../../../src/app/cache.js'
import {targetsFromRefs} from '../../../src/app/targets.js'

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

/** A fake docker: `version`, and `image inspect` of the images in images.json (exit 1 if one is missing). */
function fakeDocker(images: Record<string, string>) {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'repro-fakedocker-'))
  const db = path.join(bin, 'images.json')
  const log = path.join(bin, 'log.txt')
  writeFileSync(db, JSON.stringify(images))
  writeFileSync(
    path.join(bin, 'docker'),
    `#!${process.execPath}
const fs = require('node:fs')
const args = process.argv.slice(2)
fs.appendFileSync(${JSON.stringify(log)}, args.join(' ') + '\\n')
if (args[0] === 'version') { console.log('28.2.2 linux/amd64'); process.exit(0) }
if (args[0] === 'image' && args[1] === 'inspect') {
  const db = JSON.parse(fs.readFileSync(${JSON.stringify(db)}, 'utf8'))
  const out = []
  let code = 0
  for (const name of args.slice(2)) {
    if (db[name]) out.push({Id: db[name], RepoTags: [name], Architecture: 'amd64', Os: 'linux', Config: {Entrypoint: null, Env: ['PATH=/usr/bin']}})
    else { console.error('Error: No such image: ' + name); code = 1 }
  }
  console.log(JSON.stringify(out))
  process.exit(code)
}
process.exit(0)
`,
  )
  chmodSync(path.join(bin, 'docker'), 0o755)
  return {
    bin,
    set: (next: Record<string, string>) => writeFileSync(db, JSON.stringify(next)),
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []),
  }
}

const SETTINGS = {engine: 'auto', device: 'cpu', memory: '4g', cpus: '2', 'pids-limit': 1024}
const refs = (...images: string[]) => images.map((value) => ({kind: 'image' as const, value}))

async function identities(images: string[]) {
  const specs = await targetsFromRefs(refs(...images), SETTINGS)
  return Promise.all(specs.map((s) => s.target.cacheIdentity()))
}

describe('image identities', () => {
  test('one `image inspect` for every image, each paired with its own ID', async () => {
    const docker = fakeDocker({'img:a': ID('a'), 'img:b': ID('b')})
    process.env['PATH'] = docker.bin
    try {
      const ids = await identities(['img:a', 'img:b', 'img:a'])
      assert.deepEqual(
        ids.map((i) => i['image_id']),
        [ID('a'), ID('b'), ID('a')],
      )
      assert.deepEqual(
        docker.calls().filter((c) => c.startsWith('image')),
        ['image inspect img:a img:b'],
        'one batched inspect, none per target',
      )
    } finally {
      process.env['PATH'] = savedPath
    }
  })

  test('one image missing: each target inspects its own (and the missing one fails alone)', async () => {
    const docker = fakeDocker({'img:b': ID('b')})
    process.env['PATH'] = docker.bin
    try {
      const [a, b] = await targetsFromRefs(refs('img:a', 'img:b'), SETTINGS)
      assert.equal((await b!.target.cacheIdentity())['image_id'], ID('b'))
      await assert.rejects(a!.target.cacheIdentity(), /img:a is not present and could not be pulled/)
      assert.ok(docker.calls().includes('image inspect img:b'), 'b inspected on its own')
    } finally {
      process.env['PATH'] = savedPath
    }
  })

  test('the same tag rebuilt (another image ID) is another run-cache key; an unchanged one is the same', async () => {
    const docker = fakeDocker({'img:a': ID('a')})
    process.env['PATH'] = docker.bin
    try {
      const key = async () => cacheKey({v: 1, target: (await identities(['img:a']))[0], tag: 'r1'})
      const first = await key()
      assert.equal(await key(), first, 'unchanged image: the same key')
      docker.set({'img:a': ID('c')})
      assert.equal((await identities(['img:a']))[0]!['image_id'], ID('c'))
      assert.notEqual(await key(), first, 'rebuilt image: another key')
    } finally {
      process.env['PATH'] = savedPath
    }
  })
})
