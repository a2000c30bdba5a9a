import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createArgs, DEFAULT_LIMITS, type CreateSpec} from '../../../src/targets/container-args.js'

const spec = (over: Partial<CreateSpec> = {}): CreateSpec => ({
  engine: 'docker',
  image: 'sha256:abc',
  mode: 'train',
  gpus: false,
  limits: DEFAULT_LIMITS,
  env: {},
  labels: {repro: '1'},
  python: 'python3',
  ...over,
})

function flagValue(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []))
}

describe('container create arguments', () => {
  test('hardened by default: no network, no capabilities, no new privileges, read-only root, limits', () => {
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
  })
  test('no bind mounts: only an anonymous volume, so remote engines work', () => {
    const a = createArgs(spec())
    assert.ok(!a.includes('-v') && !a.includes('--volume'))
    assert.deepEqual(flagValue(a, '--mount'), ['type=volume,destination=/repro'])
  })
  test('GPUs: --gpus all for docker, the CDI device for podman, nothing on CPU', () => {
    assert.deepEqual(flagValue(createArgs(spec({gpus: true})), '--gpus'), ['all'])
    const podman = createArgs(spec({engine: 'podman', gpus: true}))
    assert.deepEqual(flagValue(podman, '--device'), ['nvidia.com/gpu=all'])
    assert.ok(!podman.includes('--gpus'))
    const cpu = createArgs(spec({gpus: false}))
    assert.ok(!cpu.includes('--gpus') && !cpu.includes('--device'))
  })
  test('labels, knob env and the probe command line', () => {
    const a = createArgs(spec({env: {OMP_NUM_THREADS: '1'}, mode: 'fingerprint'}))
    assert.deepEqual(flagValue(a, '--label'), ['repro=1'])
    assert.ok(flagValue(a, '--env').includes('OMP_NUM_THREADS=1'))
    assert.ok(flagValue(a, '--env').includes('PYTHONPATH=/repro/probe'))
    const tail = a.slice(a.indexOf('--entrypoint'))
    assert.deepEqual(tail, [
      '--entrypoint',
      'python3',
      'sha256:abc',
      '-m',
      'repro_probe',
      'fingerprint',
      '--config',
      '/repro/in/config.json',
      '--out',
      '/repro/out',
    ])
  })
})
