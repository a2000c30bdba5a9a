// The local docker socket for `version` and `image inspect` (src/targets/docker-api.ts): a fake
// daemon (HTTP on a unix socket, DOCKER_HOST=unix://…) and a fake CLI on PATH that logs its
// calls. The socket answers where the CLI would have asked that same socket; any other setup,
// or an answer the API path cannot use, goes to the CLI.

import {describe, test, after, before} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import {localDockerSocket} from '../../../src/targets/docker-api.js'
import {detectEngine, inspectImages, makeEngine} from '../../../src/targets/engine.js'

const ID = (c: string) => `sha256:${c.repeat(64)}`
const saved = {...process.env}
after(() => {
  for (const k of ['PATH', 'DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_CONFIG', 'REPRO_DOCKER_API', 'HOME']) {
    if (saved[k] === undefined) delete process.env[k]
    else process.env[k] = saved[k]
  }
})

const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-dockerapi-'))
const sock = path.join(dir, 'docker.sock')
const log = path.join(dir, 'cli.txt')
const requests: string[] = []
let images: Record<string, string> = {}
let fail: number | null = null
const server = http.createServer((req, res) => {
  requests.push(req.url ?? '')
  if (fail) {
    res.writeHead(fail)
    res.end('{"message":"daemon trouble"}')
    return
  }
  if (req.url === '/version') {
    res.end(JSON.stringify({Version: '27.5.1', Os: 'linux', Arch: 'arm64', ApiVersion: '1.47'}))
    return
  }
  const m = /^\/images\/(.+)\/json$/.exec(req.url ?? '')
  const name = m ? decodeURIComponent(m[1]!) : ''
  if (m && images[name]) {
    res.end(JSON.stringify({Id: images[name], RepoTags: [name], Architecture: 'arm64', Os: 'linux', Config: {Env: ['PATH=/usr/bin']}}))
    return
  }
  res.writeHead(404)
  res.end(JSON.stringify({message: `No such image: ${name}`}))
})

/** A fake docker CLI: logs its calls, answers `version` and batched `image inspect` with other values. */
function fakeCli(): string {
  const bin = path.join(dir, 'bin')
  mkdirSync(bin, {recursive: true})
  writeFileSync(
    path.join(bin, 'docker'),
    `#!/bin/sh\necho "$*" >> ${JSON.stringify(log)}\ncase "$1" in\n version) echo "20.10.24 linux/amd64";;\n image) echo '[{"Id":"${ID('f')}"}]';;\nesac\nexit 0\n`,
  )
  chmodSync(path.join(bin, 'docker'), 0o755)
  return bin
}
const cliCalls = () => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [])

before(async () => {
  await new Promise<void>((resolve) => server.listen(sock, resolve))
  process.env['PATH'] = fakeCli()
  process.env['HOME'] = dir
  process.env['DOCKER_HOST'] = `unix://${sock}`
  delete process.env['DOCKER_CONTEXT']
  delete process.env['DOCKER_CONFIG']
  delete process.env['REPRO_DOCKER_API']
})
after(() => server.close())

function reset() {
  requests.length = 0
  writeFileSync(log, '')
  fail = null
}

describe('docker API on the local socket', () => {
  test('when the CLI would use that socket, and only then', () => {
    const env = {PATH: process.env['PATH'], HOME: dir, DOCKER_HOST: `unix://${sock}`}
    assert.equal(localDockerSocket(env), sock)
    assert.equal(localDockerSocket({...env, REPRO_DOCKER_API: '0'}), null, 'switched off')
    assert.equal(localDockerSocket({...env, DOCKER_HOST: 'ssh://user@builder'}), null, 'a remote engine')
    assert.equal(localDockerSocket({...env, DOCKER_HOST: 'tcp://127.0.0.1:2375'}), null, 'a TCP engine')
    assert.equal(localDockerSocket({...env, DOCKER_CONTEXT: 'remote'}), null, 'another context')
    assert.equal(localDockerSocket({...env, DOCKER_CONTEXT: 'default'}), sock)
    assert.equal(localDockerSocket({...env, PATH: path.join(dir, 'nowhere')}), null, 'no docker CLI installed')
    assert.equal(localDockerSocket({...env, DOCKER_HOST: `unix://${path.join(dir, 'gone.sock')}`}), null, 'no socket there')
    // `docker context use remote` writes currentContext into the CLI's config
    const config = path.join(dir, 'config-ctx')
    mkdirSync(config, {recursive: true})
    writeFileSync(path.join(config, 'config.json'), JSON.stringify({currentContext: 'remote'}))
    const {DOCKER_HOST: _h, ...noHost} = env
    assert.equal(localDockerSocket({...noHost, DOCKER_CONFIG: config}), null, 'the config chose a context')
    writeFileSync(path.join(config, 'config.json'), JSON.stringify({currentContext: 'default', auths: {}}))
    assert.equal(localDockerSocket({...noHost, DOCKER_CONFIG: config}), existsSync('/var/run/docker.sock') ? '/var/run/docker.sock' : null)
    writeFileSync(path.join(config, 'config.json'), '{not json')
    assert.equal(localDockerSocket({...noHost, DOCKER_CONFIG: config}), null, 'a config the CLI would reject')
  })

  test('version and image identities from the socket, no CLI process', async () => {
    reset()
    images = {'img:a': ID('a'), 'team/img:b': ID('b')}
    const engine = await detectEngine('auto')
    assert.equal(engine.name, 'docker')
    assert.deepEqual(engine.server, {version: '27.5.1', os: 'linux', architecture: 'arm64'})
    const found = await inspectImages(makeEngine('docker'), ['img:a', 'team/img:b'])
    assert.deepEqual(
      [...found].map(([k, v]) => [k, v.id]),
      [
        ['img:a', ID('a')],
        ['team/img:b', ID('b')],
      ],
    )
    assert.deepEqual(requests, ['/version', '/images/img:a/json', '/images/team/img:b/json'])
    assert.deepEqual(cliCalls(), [], 'the CLI never started')
  })

  test('an image missing: none (each target inspects or pulls its own), like the batched CLI call', async () => {
    reset()
    images = {'img:a': ID('a')}
    assert.equal((await inspectImages(makeEngine('docker'), ['img:a', 'img:gone'])).size, 0)
    assert.deepEqual(cliCalls(), [])
  })

  test('a daemon error, or a name the API path does not take: the CLI asks', async () => {
    reset()
    fail = 500
    const engine = await detectEngine('docker')
    assert.deepEqual(engine.server, {version: '20.10.24', os: 'linux', architecture: 'amd64'}, "the CLI's answer")
    const found = await inspectImages(makeEngine('docker'), ['img:a'])
    assert.equal(found.get('img:a')?.id, ID('f'), "the CLI's answer")
    assert.deepEqual(
      cliCalls().map((c) => c.split(' ').slice(0, 2).join(' ')),
      ['version --format', 'image inspect'],
    )
    reset()
    images = {'img:a': ID('a')}
    await inspectImages(makeEngine('docker'), ['img:a', 'bad name?'])
    assert.deepEqual(requests, [], 'no request for an odd name')
    assert.equal(cliCalls().length, 1)
  })

  test('podman never uses the docker socket', async () => {
    reset()
    await inspectImages(makeEngine('podman'), ['img:a']).catch(() => undefined)
    assert.deepEqual(requests, [])
  })
})
