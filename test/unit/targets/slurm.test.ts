// The Slurm executor's pure parts: sbatch's arguments, what an image run asks Slurm for (the
// container limits the user set), and a cell that ran another image than the target's others.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createArgs, createParts, DEFAULT_LIMITS, type CreateSpec} from '../../../src/targets/container-args.js'
import {containerResources, imageDrift, sbatchArgs} from '../../../src/targets/slurm.js'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`

describe('Slurm executor (pure)', () => {
  test('sbatch: the run resources before the user’s own --slurm-arg (the last of a repeated option wins)', () => {
    const args = sbatchArgs({args: ['--mem=1G'], staging: '/s', gres: 'gpu:1'}, '/s/run-1', 'python3', 60, ['--mem=4096M'])
    assert.deepEqual(args.slice(args.indexOf('--gres'), args.indexOf('--wrap')), ['--gres', 'gpu:1', '--mem=4096M', '--mem=1G'])
    assert.equal(args[args.indexOf('--time') + 1], '6')
    assert.match(args.at(-1)!, /^exec 'python3' -S '\/s\/run-1\/probe\/node_runner.py' '\/s\/run-1\/spec.json'$/)
  })

  test('an image run asks Slurm for the limits the user set, and only those', () => {
    assert.deepEqual(containerResources({memory: '4g', cpus: '1.5'}, {memory: true, cpus: true}), ['--mem=4096M', '--cpus-per-task=2'])
    assert.deepEqual(containerResources({memory: '512m', cpus: '2'}, {memory: true, cpus: false}), ['--mem=512M'])
    assert.deepEqual(containerResources({memory: '4g', cpus: '2'}, {memory: false, cpus: false}), [])
  })

  test('createParts is createArgs cut at the image, so the node runs exactly what a local run creates', () => {
    const spec: CreateSpec = {
      engine: 'docker',
      image: 'repro-fixture:bookworm',
      mode: 'train',
      gpus: true,
      limits: DEFAULT_LIMITS,
      env: {A: '1'},
      labels: {repro: '1'},
      launch: {keepEntrypoint: false, interpreter: 'python3', boot: 'BOOT', lingerSeconds: 720},
    }
    for (const keepEntrypoint of [false, true]) {
      const s = {...spec, launch: {...spec.launch, keepEntrypoint}}
      const {options, image, command} = createParts(s)
      assert.deepEqual([...options, image, ...command], createArgs(s))
      assert.equal(options[0], 'create')
      assert.ok(options.includes('--gpus') && options.includes('--cap-drop'))
      assert.equal(command.includes('--gpus'), false)
    }
  })

  test('image drift: a later cell on another image names the target, both IDs, the tag and the fix', () => {
    assert.equal(imageDrift('slurm:docker:x:1', 'x:1', A, [], {run: 't1-r1', id: A}), null)
    const e = imageDrift('slurm:docker:x:1', 'x:1', A, [{run: 't1-r1', id: A}], {run: 't1-r2', id: B})!
    assert.equal(e.subject, 'slurm:docker:x:1')
    assert.equal(
      e.message,
      'run t1-r2 ran image sha256:bbbbbbbbbbbb, but run t1-r1 ran sha256:aaaaaaaaaaaa: the tag x:1 moved during the audit',
    )
    assert.match(e.hint, /pin the image \(--image NAME@sha256:DIGEST, or its ID\)/)
    // the first cell already differs from the image inspected here (the launch plan's)
    const first = imageDrift('t', 'x:1', A, [], {run: 't1-r1', id: B})!
    assert.match(first.message, /^run t1-r1 ran image sha256:bbbbbbbbbbbb, but the launch plan was made from sha256:aaaaaaaaaaaa/)
  })
})
