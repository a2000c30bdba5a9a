// Deciding how the probe starts in an image, from what `image inspect` says and (for an
// entrypoint) the first bytes of its file: pure functions, no engine.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {
  classifyEntrypoint,
  entrypointFileNeeded,
  executableCandidates,
  interpreterCandidates,
  parseBootStatus,
  parseImageConfig,
  parseSize,
  platformMismatch,
  probeEnvironment,
  treatEntrypoint,
} from '../../../src/targets/image-launch.js'
import {firstTarEntry, type FileHead, writeTar} from '../../../src/targets/tar.js'

const file = (head: string | Buffer, mode = 0o755): FileHead => ({type: 'file', mode, size: head.length, head: Buffer.from(head)})
const decide = (entrypoint: string[], f: FileHead | 'missing' | null = null, mode: 'auto' | 'keep' | 'skip' = 'auto') =>
  treatEntrypoint(mode, classifyEntrypoint(entrypoint, f), entrypoint)

describe('image config from inspect', () => {
  test('entrypoint, cmd, env, user and working directory; odd values dropped, long ones capped', () => {
    const cfg = parseImageConfig({
      Entrypoint: ['/opt/nvidia/nvidia_entrypoint.sh', 7],
      Cmd: null,
      Env: ['PATH=/opt/conda/bin:/usr/bin', 'PYTHONPATH=/opt/site', 'EQ=a=b', 'NOVALUE', `BIG=${'x'.repeat(10_000)}`],
      User: '4242:0',
      WorkingDir: '/workspace',
    })
    assert.deepEqual(cfg.entrypoint, ['/opt/nvidia/nvidia_entrypoint.sh'])
    assert.deepEqual(cfg.cmd, [])
    assert.equal(cfg.env['PATH'], '/opt/conda/bin:/usr/bin')
    assert.equal(cfg.env['EQ'], 'a=b')
    assert.equal(cfg.env['NOVALUE'], undefined)
    assert.ok(cfg.env['BIG']!.length < 10_000)
    assert.equal(cfg.user, '4242:0')
    assert.equal(cfg.workdir, '/workspace')
    assert.deepEqual(parseImageConfig(null), {entrypoint: [], cmd: [], env: {}, user: '', workdir: ''})
  })
})

describe('entrypoint: keep or skip (--image-entrypoint auto)', () => {
  test('no entrypoint: nothing to keep, no file read', () => {
    assert.equal(entrypointFileNeeded([]), null)
    assert.deepEqual(decide([]), {keep: false, text: 'none: the image sets no entrypoint', problem: null})
  })
  test('a shell script (NGC, micromamba) is kept; deciding needs its first bytes', () => {
    assert.equal(entrypointFileNeeded(['/opt/nvidia/nvidia_entrypoint.sh']), '/opt/nvidia/nvidia_entrypoint.sh')
    for (const shebang of ['#!/bin/bash\nset -e\nexec "$@"\n', '#!/bin/sh\n', '#!/usr/bin/env bash\n', '#! /usr/bin/env -S bash -e\n']) {
      const d = decide(['/opt/nvidia/nvidia_entrypoint.sh'], file(shebang))
      assert.equal(d.keep, true, shebang)
      assert.match(d.text, /^kept: a shell script \(\/opt\/nvidia\/nvidia_entrypoint\.sh, #!.*\) \[--image-entrypoint auto\]$/)
    }
  })
  test('an interpreter or an application is skipped', () => {
    assert.equal(entrypointFileNeeded(['python3', 'serve.py']), null)
    assert.match(decide(['python3', 'serve.py']).text, /^skipped: an interpreter \(python3\)/)
    assert.equal(decide(['/usr/bin/python3.11', '-m', 'http.server']).keep, false)
    assert.match(decide(['/usr/local/bin/serve'], file('#!/usr/bin/env python3\nimport app\n')).text, /^skipped: a python program/)
    assert.match(decide(['/usr/local/bin/app'], file(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1]))).text, /^skipped: an application/)
    assert.match(decide(['/app/run.js'], file('#!/usr/bin/node\n')).text, /^skipped: a node program/)
  })
  test('shells: a script argument or "$@" in -c runs our command; a -c that ignores arguments does not', () => {
    assert.equal(decide(['/bin/bash', '/entrypoint.sh']).keep, true)
    assert.equal(decide(['/bin/bash', '-c', 'source /opt/env/activate && exec "$@"', '--']).keep, true)
    assert.equal(decide(['/bin/sh', '-ec', ['exec $', '{@}'].join('')]).keep, true)
    assert.match(decide(['/bin/sh', '-c', 'echo hi; sleep 1']).text, /^skipped: a sh -c command that ignores its arguments/)
    assert.equal(decide(['/bin/bash']).keep, false)
  })
  test('inits and environment activators run their arguments: kept; an init around an app is judged by the app', () => {
    assert.match(decide(['/usr/bin/tini', '--']).text, /^kept: an init \(tini\)/)
    assert.equal(entrypointFileNeeded(['tini', '--', '/entrypoint.sh']), '/entrypoint.sh')
    assert.match(decide(['tini', '--', '/entrypoint.sh'], file('#!/bin/sh\n')).text, /^kept: an init \(tini\) around a shell script/)
    assert.equal(decide(['dumb-init', 'python3', 'app.py']).keep, false)
    assert.match(decide(['conda', 'run', '--no-capture-output', '-n', 'train']).text, /^kept: conda run/)
    assert.equal(decide(['micromamba', 'run', '-n', 'base']).keep, true)
    assert.equal(decide(['/usr/bin/env', 'OMP_NUM_THREADS=4']).keep, true)
  })
  test('a missing file is skipped under auto; a non-executable one is a problem (the image cannot start as built)', () => {
    assert.match(decide(['/entrypoint.sh'], 'missing').text, /^skipped: \/entrypoint\.sh, which the image does not have/)
    const noexec = decide(['/entrypoint.sh'], file('#!/bin/sh\nexec "$@"\n', 0o644))
    assert.equal(noexec.problem, 'not-executable')
    assert.match(noexec.text, /\/entrypoint\.sh \(mode 0644\)/)
    assert.equal(decide(['/entrypoint.sh'], 'missing', 'keep').problem, 'missing')
  })
  test('keep and skip force it; skip reads no file', () => {
    assert.equal(decide(['python3', 'app.py'], null, 'keep').keep, true)
    assert.equal(decide(['/entrypoint.sh', '--x'], null, 'skip').text, 'skipped: /entrypoint.sh --x [--image-entrypoint skip]')
    assert.equal(decide(['/entrypoint.sh'], file('#!/bin/sh\n', 0o644), 'skip').problem, null)
  })
  test("a bare entrypoint name is looked up on the image's PATH; a relative path from WORKDIR", () => {
    assert.deepEqual(executableCandidates('entrypoint.sh', '/opt/env/bin:/usr/bin:relative:/usr/bin', '/'), [
      '/opt/env/bin/entrypoint.sh',
      '/usr/bin/entrypoint.sh',
    ])
    assert.deepEqual(executableCandidates('/e.sh', '/usr/bin', '/'), ['/e.sh'])
    assert.deepEqual(executableCandidates('./bin/e.sh', undefined, '/workspace'), ['/workspace/./bin/e.sh'])
    assert.equal(executableCandidates('x', undefined, '').length, 6)
  })
  test("the file's first bytes and mode come from the tar `cp … -` streams, even cut short", () => {
    const tar = writeTar([{name: 'entrypoint.sh', data: Buffer.from('#!/bin/sh\nexec "$@"\n'.padEnd(9000, '#')), mode: 0o644}])
    const head = firstTarEntry(tar.subarray(0, 1024))!
    assert.equal(head.type, 'file')
    assert.equal(head.mode, 0o644)
    assert.match(head.head.toString(), /^#!\/bin\/sh\n/)
    assert.equal(firstTarEntry(Buffer.alloc(100)), null)
  })
})

describe('interpreter and environment', () => {
  test('python3, then python (conda installs only `python`), or exactly what the user named', () => {
    assert.deepEqual(interpreterCandidates(null), ['python3', 'python'])
    assert.deepEqual(interpreterCandidates('/opt/conda/bin/python'), ['/opt/conda/bin/python'])
  })
  test("the probe's path is added to the image's PYTHONPATH, never substituted; defaults only where the image sets none", () => {
    assert.deepEqual(probeEnvironment({PATH: '/usr/bin', LANG: 'C.UTF-8'}, {}), {
      HOME: '/tmp',
      PYTHONDONTWRITEBYTECODE: '1',
      PYTHONHASHSEED: '0',
      PYTHONPATH: '/repro/probe',
      REPRO_PROBE_SCRATCH: '/repro/scratch',
    })
    const env = probeEnvironment({PYTHONPATH: '/opt/site', HOME: '/home/trainer', OMP_NUM_THREADS: '4'}, {})
    assert.equal(env['PYTHONPATH'], '/opt/site:/repro/probe')
    assert.equal(env['HOME'], undefined)
    assert.equal(env['OMP_NUM_THREADS'], undefined, 'the image sets it; repro leaves it alone')
    assert.equal(probeEnvironment({OMP_NUM_THREADS: '4'}, {OMP_NUM_THREADS: '1'})['OMP_NUM_THREADS'], '1', 'a knob overrides')
  })
  test('sizes, platforms and the launcher status', () => {
    assert.equal(parseSize('256m'), 256 * 1024 ** 2)
    assert.equal(parseSize('1G'), 1024 ** 3)
    assert.equal(parseSize('64k'), 65536)
    assert.equal(parseSize('12'), 12)
    for (const bad of ['', 'm', '1.5g', '-1m', '1t', '0']) assert.equal(parseSize(bad), null, bad)
    assert.equal(platformMismatch({os: 'linux', architecture: 'amd64'}, {os: 'linux', architecture: 'amd64'}), null)
    assert.equal(platformMismatch({os: 'linux', architecture: 'x86_64'}, {os: 'linux', architecture: 'amd64'}), null)
    assert.equal(
      platformMismatch({os: 'linux', architecture: 'arm64'}, {os: 'linux', architecture: 'amd64'}),
      'the image is built for linux/arm64, the engine runs linux/amd64',
    )
    assert.equal(platformMismatch({os: 'linux', architecture: 'arm64'}, null), null)
    assert.deepEqual(parseBootStatus('{"exit": 0, "python": "/opt/conda/bin/python", "full": false}'), {
      exit: 0,
      python: '/opt/conda/bin/python',
      full: false,
      signal: null,
      oom: false,
    })
    // a supervised run (serve): the signal that ended it, and the cgroup's OOM kill; hostile values are dropped
    assert.deepEqual(parseBootStatus('{"exit": 137, "signal": 9, "oom": true, "full": false, "python": null}'), {
      exit: 137,
      python: null,
      full: false,
      signal: 9,
      oom: true,
    })
    assert.deepEqual(parseBootStatus('{"exit": 1, "signal": "9", "oom": "yes"}'), {
      exit: 1,
      python: null,
      full: false,
      signal: null,
      oom: false,
    })
    assert.equal(parseBootStatus('{"exit": "0"}'), null)
    assert.equal(parseBootStatus('{"exit": 0'), null)
    assert.equal(parseBootStatus('[]'), null)
  })
})
