// Which engine CLI calls repro makes before it runs anything (fake docker/podman CLIs on PATH
// that log their arguments): detection is one `version` call (no `--version` first), and the
// orphan sweep (`ps`) waits for the first container this process creates.

import {describe, test, after} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {detectEngine, sweepBeforeFirstContainer} from '../../../src/targets/engine.js'

const savedPath = process.env['PATH']
// the fake CLI answers, not the host daemon's socket (src/targets/docker-api.ts)
const savedApi = process.env['REPRO_DOCKER_API']
process.env['REPRO_DOCKER_API'] = '0'
after(() => {
  process.env['PATH'] = savedPath
  if (savedApi === undefined) delete process.env['REPRO_DOCKER_API']
  else process.env['REPRO_DOCKER_API'] = savedApi
})

/** A folder holding fake CLIs: each logs `name args…` to log.txt and answers `version`. */
function fakeCLIs(names: string[]): {bin: string; log: () => string[]} {
  const bin = mkdtempSync(path.join(os.tmpdir(), 'repro-fakecli-'))
  const log = path.join(bin, 'log.txt')
  for (const n of names) {
    const file = path.join(bin, n)
    writeFileSync(
      file,
      `#!/bin/sh\necho "${n} $*" >> ${JSON.stringify(log)}\ncase "$1" in version) echo "28.2.2 linux/amd64";; esac\nexit 0\n`,
    )
    chmodSync(file, 0o755)
  }
  return {bin, log: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [])}
}

describe('engine calls', () => {
  test('auto: one `version` call finds docker and its server; podman when there is no docker', async () => {
    const docker = fakeCLIs(['docker', 'podman'])
    process.env['PATH'] = docker.bin
    const e = await detectEngine('auto')
    assert.equal(e.name, 'docker')
    assert.deepEqual(e.server, {version: '28.2.2', os: 'linux', architecture: 'amd64'})
    assert.deepEqual(docker.log(), ['docker version --format {{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}'])
    const podman = fakeCLIs(['podman'])
    process.env['PATH'] = podman.bin
    assert.equal((await detectEngine('auto')).name, 'podman')
    assert.deepEqual(podman.log(), ['podman version --format {{.Server.Version}} {{.Server.OsArch}}'])
    process.env['PATH'] = mkdtempSync(path.join(os.tmpdir(), 'repro-nocli-'))
    await assert.rejects(detectEngine('auto'), /no container engine is installed/)
    await assert.rejects(detectEngine('docker'), /the docker CLI is not installed/)
    process.env['PATH'] = savedPath
  })

  test('the orphan sweep runs once, before the first container, never for inspect-only work', async () => {
    const calls: string[] = []
    const base = {
      name: 'docker' as const,
      async exec(args: string[]) {
        calls.push(args.slice(0, 2).join(' '))
        return {
          exitCode: 0,
          signal: null,
          timedOut: false,
          seconds: 0,
          stdout: '',
          stdoutBytes: null,
          stdoutTruncated: false,
          stderrTail: '',
        }
      },
    }
    const engine = sweepBeforeFirstContainer(base)
    await engine.exec(['image', 'inspect', 'x'])
    await engine.exec(['version'])
    assert.deepEqual(calls, ['image inspect', 'version'], 'no sweep while nothing is created')
    await Promise.all([engine.exec(['create', 'a']), engine.exec(['create', 'b'])])
    await engine.exec(['run', 'c'])
    assert.deepEqual(calls, ['image inspect', 'version', 'ps -a', 'create a', 'create b', 'run c'])
  })
})
