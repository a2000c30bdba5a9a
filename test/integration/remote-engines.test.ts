// Remote Docker engines keep working (nothing is bind-mounted): the same bookworm-vs-trixie audit
// locally, through DOCKER_HOST=ssh:// to an sshd this test starts on 127.0.0.1 (its own host and
// client keys; stopped by PID afterwards), and through a docker context — same verdict, same
// first divergence, bitwise the same traces.

import {describe, test, before, after} from 'node:test'
import assert from 'node:assert/strict'
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {assertPrerequisite, engineMissing, needs, repro, reproContainers, tmpDir} from './helpers.js'

const FAST = ['--epochs', '1', '--rows', '512']
const SSHD = '/usr/sbin/sshd'

function sshMissing(): string | null {
  if (!existsSync(SSHD)) return 'openssh-server is not installed (bash scripts/bootstrap.sh --full installs it)'
  for (const tool of ['ssh', 'ssh-keygen'])
    if (spawnSync(tool, ['-V'], {encoding: 'utf8'}).error)
      return 'openssh-client is not installed (bash scripts/bootstrap.sh --full installs it)'
  if (process.getuid?.() !== 0) return 'sshd needs root here (privilege separation)'
  return null
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
  })
}

interface Report {
  verdict: {status: string; exit_code: number}
  targets: {trace_digest: string}[]
  comparisons: {role: string; divergence: {first_divergence: {step: unknown; entry: string}}}[]
}

function summary(stdout: string) {
  const r = JSON.parse(stdout) as Report
  const cross = r.comparisons.find((c) => c.role === 'cross')!
  return {
    verdict: r.verdict.status,
    exit: r.verdict.exit_code,
    first: cross.divergence.first_divergence,
    traces: r.targets.map((t) => t.trace_digest),
  }
}

describe('remote docker engines: DOCKER_HOST=ssh:// and a docker context', () => {
  const missing = engineMissing('docker', ['repro-fixture:bookworm', 'repro-fixture:trixie']) ?? sshMissing()
  const dir = tmpDir('repro-ssh-')
  const user = os.userInfo().username
  let sshd: ChildProcess | null = null
  let port = 0
  /** the environment that makes the docker CLI's `ssh` use this test's keys and known host */
  let sshEnv: Record<string, string> = {}

  before(async () => {
    if (missing) return
    port = await freePort()
    for (const key of ['host', 'client']) {
      const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `repro-test-${key}`, '-f', path.join(dir, key)], {
        encoding: 'utf8',
      })
      assert.equal(r.status, 0, r.stderr)
    }
    writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'client.pub')))
    chmodSync(path.join(dir, 'authorized_keys'), 0o600)
    writeFileSync(
      path.join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${path.join(dir, 'host')}`,
        `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
        `PidFile ${path.join(dir, 'sshd.pid')}`,
        'PermitRootLogin prohibit-password',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'PrintMotd no',
        '',
      ].join('\n'),
    )
    mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
    sshd = spawn(SSHD, ['-D', '-e', '-f', path.join(dir, 'sshd_config')], {stdio: ['ignore', 'ignore', 'pipe']})
    // The client trusts exactly this host key, and uses exactly this key.
    const hostKey = readFileSync(path.join(dir, 'host.pub'), 'utf8').split(' ').slice(0, 2).join(' ')
    writeFileSync(path.join(dir, 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`)
    writeFileSync(
      path.join(dir, 'ssh_config'),
      [
        'Host 127.0.0.1',
        `  IdentityFile ${path.join(dir, 'client')}`,
        '  IdentitiesOnly yes',
        `  UserKnownHostsFile ${path.join(dir, 'known_hosts')}`,
        '  StrictHostKeyChecking yes',
        '  BatchMode yes',
        '',
      ].join('\n'),
    )
    // docker runs `ssh` from PATH: a wrapper that adds this test's config
    mkdirSync(path.join(dir, 'bin'))
    writeFileSync(path.join(dir, 'bin', 'ssh'), `#!/bin/sh\nexec /usr/bin/ssh -F ${path.join(dir, 'ssh_config')} "$@"\n`)
    chmodSync(path.join(dir, 'bin', 'ssh'), 0o755)
    sshEnv = {PATH: `${path.join(dir, 'bin')}:${process.env['PATH'] ?? '/usr/bin:/bin'}`}
    const until = Date.now() + 20_000
    while (Date.now() < until) {
      const r = spawnSync('ssh', ['-F', path.join(dir, 'ssh_config'), '-p', String(port), `${user}@127.0.0.1`, 'true'], {encoding: 'utf8'})
      if (r.status === 0) return
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
    assert.fail('the test sshd did not accept the test key')
  })

  after(() => {
    // stopped by its PID, never by name: other sshds on this host are not ours
    if (sshd?.pid) process.kill(sshd.pid, 'SIGTERM')
  })

  test('bookworm vs trixie: local docker, DOCKER_HOST=ssh:// and a docker context agree', needs(missing), () => {
    assertPrerequisite(missing)
    const args = [
      'audit',
      '--image',
      'repro-fixture:bookworm',
      '--image',
      'repro-fixture:trixie',
      '--repeats',
      '1',
      '--no-explain',
      '--json',
      ...FAST,
    ]
    const local = repro([...args, '--out', tmpDir()])
    assert.equal(local.status, 1, local.stderr)
    const expected = summary(local.stdout)

    const host = `ssh://${user}@127.0.0.1:${port}`
    const viaSsh = repro([...args, '--out', tmpDir()], {env: {...sshEnv, DOCKER_HOST: host}})
    assert.equal(viaSsh.status, 1, viaSsh.stderr)
    assert.deepEqual(summary(viaSsh.stdout), expected)
    assert.deepEqual(reproContainers('docker', viaSsh), [])

    const config = path.join(dir, 'docker-config')
    const ctx = (...a: string[]) =>
      spawnSync('docker', ['context', ...a], {encoding: 'utf8', env: {...process.env, ...sshEnv, DOCKER_CONFIG: config}})
    assert.equal(ctx('create', 'repro-it', '--docker', `host=${host}`).status, 0)
    assert.equal(ctx('use', 'repro-it').status, 0)
    const viaContext = repro([...args, '--out', tmpDir()], {env: {...sshEnv, DOCKER_CONFIG: config}})
    assert.equal(viaContext.status, 1, viaContext.stderr)
    assert.deepEqual(summary(viaContext.stdout), expected)
    assert.deepEqual(reproContainers('docker', viaContext), [])
  })
})
