import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {
  createArgs,
  DEFAULT_LIMITS,
  removeArgs,
  rlimitsFromProc,
  workAreaMount,
  type CreateSpec,
} from '../../../src/targets/container-args.js'

const spec = (over: Partial<CreateSpec> = {}): CreateSpec => ({
  engine: 'docker',
  image: 'sha256:abc',
  mode: 'train',
  gpus: false,
  limits: DEFAULT_LIMITS,
  env: {},
  labels: {repro: '1'},
  launch: {keepEntrypoint: false, interpreter: 'python3', boot: 'BOOT', lingerSeconds: 720},
  ...over,
})

function flagValue(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []))
}

describe('container create arguments', () => {
  test('hardened by default: no network, no capabilities, no new privileges, read-only root, limits, explicit rlimits', () => {
    const a = createArgs(spec())
    assert.deepEqual(flagValue(a, '--network'), ['none'])
    assert.deepEqual(flagValue(a, '--cap-drop'), ['ALL'])
    assert.deepEqual(flagValue(a, '--security-opt'), ['no-new-privileges'])
    assert.ok(a.includes('--read-only'))
    assert.deepEqual(flagValue(a, '--pids-limit'), ['1024'])
    assert.deepEqual(flagValue(a, '--memory'), ['4g'])
    assert.deepEqual(flagValue(a, '--memory-swap'), ['4g'])
    assert.deepEqual(flagValue(a, '--cpus'), ['2'])
    assert.match(flagValue(a, '--tmpfs')[0]!, /^\/tmp:rw,nosuid,nodev,size=1g$/)
    assert.deepEqual(flagValue(a, '--ulimit'), ['nofile=1024:1024', 'nproc=4096:4096'])
    for (const engine of ['docker', 'podman'] as const) assert.equal(flagValue(createArgs(spec({engine})), '--ulimit').length, 2)
  })
  test("the image's user, working directory and environment are kept: no --user, no --workdir, only repro's additions", () => {
    const a = createArgs(spec({env: {PYTHONPATH: '/opt/site:/repro/probe'}}))
    assert.ok(!a.includes('--user') && !a.includes('--workdir') && !a.includes('-w') && !a.includes('-u'))
    assert.deepEqual(flagValue(a, '--env'), ['PYTHONPATH=/opt/site:/repro/probe'])
  })
  test('no bind mounts: the work area is a size-bounded tmpfs volume any user can write, labelled on docker', () => {
    const a = createArgs(spec({limits: {...DEFAULT_LIMITS, workArea: '256m'}, labels: {repro: '1', 'repro.pid': '42'}}))
    assert.ok(!a.includes('-v') && !a.includes('--volume'))
    assert.deepEqual(flagValue(a, '--mount'), [
      'type=volume,destination=/repro,volume-label=repro.pid=42,volume-label=repro=1,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"volume-opt=o=size=256m,mode=1777,nosuid,nodev"',
    ])
    // podman's --mount has no volume-label (yet); the rest is the same
    assert.equal(
      workAreaMount('podman', '1g', {repro: '1'}),
      'type=volume,destination=/repro,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"volume-opt=o=size=1g,mode=1777,nosuid,nodev"',
    )
  })
  test('GPUs: --gpus all for docker, the CDI device for podman, nothing on CPU', () => {
    assert.deepEqual(flagValue(createArgs(spec({gpus: true})), '--gpus'), ['all'])
    const podman = createArgs(spec({engine: 'podman', gpus: true}))
    assert.deepEqual(flagValue(podman, '--device'), ['nvidia.com/gpu=all'])
    assert.ok(!podman.includes('--gpus'))
    const cpu = createArgs(spec({gpus: false}))
    assert.ok(!cpu.includes('--gpus') && !cpu.includes('--device'))
  })
  const launcher = ['-c', 'BOOT', '/repro', '720', 'fingerprint', '--config', '/repro/in/config.json', '--out', '/repro/out']
  test('a skipped entrypoint is replaced by the interpreter, which runs the launcher', () => {
    const a = createArgs(spec({env: {OMP_NUM_THREADS: '1'}, mode: 'fingerprint'}))
    assert.deepEqual(flagValue(a, '--label'), ['repro=1'])
    assert.ok(flagValue(a, '--env').includes('OMP_NUM_THREADS=1'))
    assert.deepEqual(a.slice(a.indexOf('--entrypoint')), ['--entrypoint', 'python3', 'sha256:abc', ...launcher])
  })
  test('a kept entrypoint gets the interpreter as its command', () => {
    const a = createArgs(
      spec({mode: 'fingerprint', launch: {keepEntrypoint: true, interpreter: 'python', boot: 'BOOT', lingerSeconds: 720}}),
    )
    assert.ok(!a.includes('--entrypoint'))
    assert.deepEqual(a.slice(a.indexOf('sha256:abc')), ['sha256:abc', 'python', ...launcher])
  })
  test('rlimits stay at or under the hard limits this process has, and under the defaults', () => {
    const limits = (files: string, procs: string) =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax processes             ${procs}                ${procs}                processes\nMax open files            ${files}                ${files}                files\n`
    assert.deepEqual(rlimitsFromProc(limits('20000', '96364')), {nofile: [1024, 1024], nproc: [4096, 4096]})
    assert.deepEqual(rlimitsFromProc(limits('512', '300')), {nofile: [512, 512], nproc: [300, 300]})
    assert.deepEqual(rlimitsFromProc(limits('unlimited', 'unlimited')), {nofile: [1024, 1024], nproc: [4096, 4096]})
    assert.deepEqual(rlimitsFromProc(null), {nofile: [1024, 1024], nproc: [4096, 4096]})
  })

  test('removal kills at once on both engines: podman without its 10 s stop timeout', () => {
    assert.deepEqual(removeArgs('docker', ['a', 'b']), ['rm', '-f', '-v', 'a', 'b'])
    assert.deepEqual(removeArgs('podman', ['a']), ['rm', '-f', '-v', '-t', '0', 'a'])
  })
})
