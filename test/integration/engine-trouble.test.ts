// When the engine or the image misbehaves: a work area written past its cap, a full host disk
// on copy-out, an image for another architecture, an entrypoint that is not executable, the
// engine dying mid-audit, a repro killed with -9. Each is one line, exit 2, the other targets
// still reported, and nothing left behind (no container, no volume; the host disk untouched).
// It reads engine-wide state (the engine's free disk, orphans it leaves on purpose until the next
// run sweeps them), so scripts/run-tests.mjs runs it with no other file beside it.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {createHash} from 'node:crypto'
import {writeTar} from '../../src/targets/tar.js'
import {
  assertPrerequisite,
  engineMissing,
  type EngineName,
  needs,
  startHangingAudit,
  ROOT,
  repro,
  reproContainers,
  testEnv,
  tmpDir,
  unwrap,
  waitFor,
} from './helpers.js'

const FAST = ['--epochs', '1', '--rows', '512']

interface Report {
  verdict: {status: string; exit_code: number}
  targets: {status: string; error: {line: string} | null}[]
}

/** Bytes available where the engine keeps images, containers and volumes. */
function dataRootAvail(engine: EngineName): {dir: string; avail: number} {
  const format = engine === 'docker' ? '{{.DockerRootDir}}' : '{{.Store.GraphRoot}}'
  const dir = spawnSync(engine, ['info', '--format', format], {encoding: 'utf8'}).stdout.trim()
  const df = spawnSync('df', ['-B1', '--output=avail', dir], {encoding: 'utf8'}).stdout.trim().split('\n').pop()!
  return {dir, avail: Number(df)}
}

/** Volumes now present that repro may have left: labelled ones (docker) or dangling ones (podman). */
function volumes(engine: EngineName, pid: number): string[] {
  const filter = engine === 'docker' ? `label=repro.pid=${pid}` : 'dangling=true'
  const r = spawnSync(engine, ['volume', 'ls', '-q', '--filter', filter], {encoding: 'utf8'})
  return r.stdout.split('\n').filter(Boolean)
}

/**
 * A tiny image for linux/arm64, made offline: a docker-archive (manifest, config, one layer)
 * that `docker load` and `podman load` both read. (`docker import --platform` is ignored by
 * this Docker 20.10 without experimental features.)
 */
function loadArm64Image(engine: EngineName, ref: string): void {
  const layer = writeTar([{name: 'hello', data: Buffer.from('hi\n')}])
  const layerSha = createHash('sha256').update(layer).digest('hex')
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'arm64',
      os: 'linux',
      created: '2024-01-01T00:00:00Z',
      config: {Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/hello']},
      rootfs: {type: 'layers', diff_ids: [`sha256:${layerSha}`]},
      history: [{created: '2024-01-01T00:00:00Z', created_by: 'repro engine-trouble test'}],
    }),
  )
  const configSha = createHash('sha256').update(config).digest('hex')
  const manifest = [{Config: `${configSha}.json`, RepoTags: [ref], Layers: [`${layerSha}/layer.tar`]}]
  const archive = writeTar([
    {name: layerSha},
    {name: `${layerSha}/layer.tar`, data: layer},
    {name: `${configSha}.json`, data: config},
    {name: 'manifest.json', data: Buffer.from(JSON.stringify(manifest))},
  ])
  const file = path.join(tmpDir('repro-arm64-'), 'image.tar')
  writeFileSync(file, archive)
  const r = spawnSync(engine, ['load', '-i', file], {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
}

for (const engine of ['docker', 'podman'] as EngineName[]) {
  const missing = engineMissing(engine, [
    'repro-fixture:trixie',
    'repro-fixture:fill-work-area',
    'repro-fixture:entrypoint-noexec',
    'repro-fixture:hang',
    'repro-fixture:no-python',
  ])
  const t = (name: string, fn: () => unknown) =>
    test(name, needs(missing), async () => {
      assertPrerequisite(missing)
      await fn()
    })

  describe(`engine and image trouble on ${engine}`, () => {
    t(
      'an image writing 4 GiB into the work area stops at --work-area 64m: one line naming the cap and the flag, nothing left, host disk untouched',
      () => {
        const before = dataRootAvail(engine)
        const podmanVolumes = engine === 'podman' ? volumes(engine, 0) : []
        const r = repro([
          'audit',
          '--engine',
          engine,
          '--image',
          'repro-fixture:fill-work-area',
          '--work-area',
          '64m',
          '--repeats',
          '1',
          '--json',
          '--out',
          tmpDir(),
          ...FAST,
        ])
        const after = dataRootAvail(engine)
        assert.equal(r.status, 2, r.stderr)
        const report = JSON.parse(r.stdout) as Report
        assert.match(
          report.targets[0]!.error!.line,
          new RegExp(
            `^#1 ${engine}:repro-fixture:fill-work-area: the container's work area ran full \\(--work-area 64m\\) while the probe ran; the container and its volume were removed — raise --work-area`,
          ),
        )
        assert.deepEqual(reproContainers(engine, r), [])
        assert.deepEqual(
          volumes(engine, r.pid).filter((v) => !podmanVolumes.includes(v)),
          [],
        )
        // The filler tried 4 GiB; the engine's data root (where an unbounded volume would live) did
        // not lose it. Other processes share this disk, hence the margin.
        const lost = before.avail - after.avail
        assert.ok(lost < 1024 ** 3, `${before.dir}: ${lost} bytes less available after the audit`)
      },
    )

    t('an image for another architecture (linux/arm64, made offline): one line naming both platforms', () => {
      const ref = `repro-it-arm64:${process.pid}`
      loadArm64Image(engine, ref)
      try {
        const r = repro(['audit', '--engine', engine, '--image', ref, '--repeats', '1', '--out', tmpDir(), ...FAST])
        assert.equal(r.status, 2, r.stderr)
        assert.match(
          unwrap(r.stdout),
          new RegExp(
            `#1 ${engine}:${ref}: the image is built for linux/arm64, the engine runs linux/amd64 — audit the image built for linux/amd64`,
          ),
        )
        assert.deepEqual(reproContainers(engine, r), [])
      } finally {
        spawnSync(engine, ['image', 'rm', ref], {encoding: 'utf8'})
      }
    })

    t('an entrypoint that is not executable: one line naming it, its mode and the fix; the other target still reported', () => {
      const r = repro([
        'audit',
        '--engine',
        engine,
        '--image',
        'repro-fixture:entrypoint-noexec',
        '--image',
        'repro-fixture:no-python',
        '--repeats',
        '1',
        '--json',
        '--out',
        tmpDir(),
        ...FAST,
      ])
      assert.equal(r.status, 2)
      const [noexec, other] = (JSON.parse(r.stdout) as Report).targets
      assert.match(
        noexec!.error!.line,
        /the image's entrypoint \/entrypoint\.sh \(mode 0644\) is not executable, so the image cannot start as built — make it executable in the image \(RUN chmod \+x …\), or start the probe without it: --image-entrypoint skip$/,
      )
      assert.match(other!.error!.line, /neither python3 nor python/)
      assert.deepEqual(reproContainers(engine, r), [])
    })

    // here, not in containers.test: this file runs alone (scripts/run-tests.mjs), so no other
    // file's repro sweeps the orphan before the assertion that it was left
    t('containers orphaned by a crashed repro (kill -9) are swept at the next start', async () => {
      const {child, owner: crashed} = await startHangingAudit(engine)
      child.kill('SIGKILL')
      await new Promise((resolve) => child.on('exit', resolve))
      assert.ok(reproContainers(engine, crashed).length > 0, 'the crash left an orphan behind')
      const r = repro(['audit', '--engine', engine, '--image', 'repro-fixture:no-python', '--repeats', '1', '--out', tmpDir()])
      assert.equal(r.status, 2)
      assert.deepEqual(reproContainers(engine, crashed), [], 'the next run swept the orphan')
    })
  })
}

describe('engine trouble on docker only', () => {
  const missing = engineMissing('docker', ['repro-fixture:trixie', 'repro-fixture:hang', 'repro-fixture:entrypoint-noexec'])
  const root = process.getuid?.() === 0 ? null : 'needs root to mount a small tmpfs as the full disk'

  test('--image-entrypoint skip runs an image whose entrypoint is not executable', needs(missing), () => {
    assertPrerequisite(missing)
    const r = repro([
      'audit',
      '--image',
      'repro-fixture:entrypoint-noexec',
      '--image-entrypoint',
      'skip',
      '--repeats',
      '1',
      '--json',
      '--out',
      tmpDir(),
      ...FAST,
    ])
    assert.equal(r.status, 0, r.stdout)
    const details = JSON.parse(r.stdout).targets[0].identity.details
    assert.match(details.entrypoint_treatment, /^skipped: .*\[--image-entrypoint skip\]$/)
  })

  test('a full host disk on copy-out: one line naming where, no half-written artifact, no container', needs(missing ?? root), () => {
    assertPrerequisite(missing ?? root)
    const mnt = mkdtempSync(path.join(os.tmpdir(), 'repro-fulldisk-'))
    // room for the inputs and the reports, not for the artifacts (tensors alone are ~350 KB)
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=420k', 'tmpfs', mnt]).status, 0)
    try {
      const out = path.join(mnt, 'audit')
      const r = repro(['audit', '--image', 'repro-fixture:trixie', '--repeats', '1', '--out', out, ...FAST])
      assert.equal(r.status, 2, r.stderr)
      assert.match(
        unwrap(r.stdout),
        new RegExp(
          `#1 docker:repro-fixture:trixie: no space left on the host to copy the artifacts out into ${out}/t1-r1 — free disk space there, or write the run somewhere else \\(--out\\)`,
        ),
      )
      const left = spawnSync('ls', [path.join(out, 't1-r1')], {encoding: 'utf8'})
        .stdout.split('\n')
        .filter(Boolean)
      assert.deepEqual(left.sort(), ['inputs', 'target.json'])
      assert.deepEqual(reproContainers('docker', r), [])
    } finally {
      spawnSync('umount', [mnt])
      rmSync(mnt, {recursive: true, force: true})
    }
  })

  test(
    'the engine dies mid-audit: one line for that target, the other still reported, exit 2; its container is swept once the engine is back',
    needs(missing),
    async () => {
      assertPrerequisite(missing)
      // The "engine" repro talks to is a socket proxy in front of the real one: closing it is the
      // engine going away, without touching the daemon other people's tests use.
      const dir = tmpDir('repro-engine-')
      const sock = path.join(dir, 'docker.sock')
      const hangId = spawnSync('docker', ['image', 'inspect', '--format', '{{.Id}}', 'repro-fixture:hang'], {
        encoding: 'utf8',
      }).stdout.trim()
      const proxy = () => {
        const open = new Set<net.Socket>()
        const server = net.createServer((client) => {
          const upstream = net.connect('/var/run/docker.sock')
          for (const s of [client, upstream]) {
            open.add(s)
            s.on('error', () => s.destroy())
            s.on('close', () => open.delete(s))
          }
          client.pipe(upstream).pipe(client)
        })
        server.listen(sock)
        return () => {
          server.close()
          for (const s of open) s.destroy()
        }
      }
      let stop = proxy()
      const env = testEnv({env: {DOCKER_HOST: `unix://${sock}`}})
      const child = spawn(
        process.execPath,
        [
          path.join(ROOT, 'bin', 'run.js'),
          'audit',
          '--image',
          'repro-fixture:trixie',
          '--image',
          'repro-fixture:hang',
          '--repeats',
          '1',
          '--json',
          '--out',
          tmpDir(),
          ...FAST,
        ],
        {env, stdio: ['ignore', 'pipe', 'pipe']},
      )
      let stdout = ''
      child.stdout.on('data', (d) => {
        stdout += d
      })
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
      const mine = {pid: child.pid!}
      const hangRunning = () =>
        spawnSync('docker', ['ps', '--filter', `label=repro.pid=${mine.pid}`, '--format', '{{.Image}}'], {encoding: 'utf8'})
          .stdout.split('\n')
          .some((image) => image && hangId.includes(image.replace(/^sha256:/, '')))
      try {
        assert.ok(await waitFor(hangRunning, 240_000), 'the second target started')
        await new Promise((resolve) => setTimeout(resolve, 2000))
        stop()
        const code = await exited
        assert.equal(code, 2, stdout)
        const report = JSON.parse(stdout) as Report
        assert.equal(report.targets[0]!.status, 'ok')
        assert.match(
          report.targets[1]!.error!.line,
          /^#2 docker:repro-fixture:hang: the docker engine stopped answering during the run \(.*\) — check the engine \(docker info\) and rerun; the next run removes any container it left$/,
        )
        assert.ok(reproContainers('docker', mine).length > 0, 'the dead engine kept its container')
        stop = proxy()
        // not spawnSync: the proxy lives in this process and must keep serving
        const next = spawn(
          process.execPath,
          [path.join(ROOT, 'bin', 'run.js'), 'audit', '--image', 'repro-fixture:no-python', '--repeats', '1', '--out', tmpDir()],
          {
            env,
            stdio: 'ignore',
          },
        )
        assert.equal(await new Promise((resolve) => next.on('exit', resolve)), 2)
        assert.deepEqual(reproContainers('docker', mine), [], 'the next run swept it')
      } finally {
        stop()
        child.kill('SIGKILL')
      }
    },
  )
})
