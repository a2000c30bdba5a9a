// The Slurm executor's pure parts: an array's sbatch arguments, its script, the queue's lines, what an image run asks Slurm for (the
// container limits the user set), and a cell that ran another image than the target's others.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {createArgs, createParts, DEFAULT_LIMITS, type CreateSpec} from '../../../src/targets/container-args.js'
import {containerResources, imageDrift, type SlurmOptions} from '../../../src/targets/slurm.js'
import {arrayScript, parseQueue, sbatchArrayArgs, slurmTime} from '../../../src/targets/slurm-array.js'
import {identifySpec, inspectAnswer, inspectSpec, pythonIdentity} from '../../../src/targets/slurm-inspect.js'
import type {NodeStatus} from '../../../src/artifacts/prepared.js'

const A = `sha256:${'a'.repeat(64)}`
const B = `sha256:${'b'.repeat(64)}`

describe('Slurm executor (pure)', () => {
  test('sbatch: one array of the batch, throttled to --jobs, the run resources before the user’s own --slurm-arg', () => {
    const opts: SlurmOptions = {args: ['--mem=1G'], staging: '/s', gres: 'gpu:1', throttle: 2}
    const args = sbatchArrayArgs(opts, '/s/array-1', 16, slurmTime(opts, 60), ['--mem=4096M'])
    assert.ok(args.includes('--array=0-15%2'), args.join(' '))
    assert.deepEqual(args.slice(args.indexOf('--gres'), -1), ['--gres', 'gpu:1', '--mem=4096M', '--mem=1G'])
    assert.equal(args[args.indexOf('--time') + 1], '6')
    assert.equal(args[args.indexOf('--error') + 1], '/s/array-1/task-%a.err')
    assert.equal(args.at(-1), '/s/array-1/array.sh')
    assert.equal(slurmTime({time: '0:30'}, 60), '0:30')
    assert.ok(sbatchArrayArgs({args: [], staging: '/s'}, '/s/a', 1, '6').includes('--array=0-0%1'))
  })

  test('the array script: task i runs the node runner on run i’s folder, quoted; any other task fails', () => {
    const script = arrayScript([
      {stage: '/s/run-a', python: 'python3'},
      {stage: "/s/it's", python: '/opt/py 3/bin/python'},
    ])
    const lines = script.split('\n')
    assert.equal(lines[0], '#!/bin/sh')
    assert.ok(lines.includes(`0) cd '/s/run-a' && exec 'python3' -S '/s/run-a/probe/node_runner.py' '/s/run-a/spec.json' ;;`), script)
    assert.ok(
      lines.includes(`1) cd '/s/it'\\''s' && exec '/opt/py 3/bin/python' -S '/s/it'\\''s/probe/node_runner.py' '/s/it'\\''s/spec.json' ;;`),
      script,
    )
    assert.match(script, /\*\) echo "repro: this array has no task \$SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;/)
  })

  test('the queue of an array, one line per task (squeue -r)', () => {
    const q = parseQueue('556_0|RUNNING|None\n556_1|PENDING|JobHeldUser\n\n')
    assert.deepEqual([...q.keys()], ['556_0', '556_1'])
    assert.deepEqual(q.get('556_1'), {state: 'PENDING', reason: 'JobHeldUser'})
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
    assert.equal(imageDrift('slurm:docker:x:1', 'x:1', {id: A, where: 'node vm'}, [], {run: 't1-r1', id: A}), null)
    const e = imageDrift('slurm:docker:x:1', 'x:1', {id: A, where: 'node vm'}, [{run: 't1-r1', id: A}], {run: 't1-r2', id: B})!
    assert.equal(e.subject, 'slurm:docker:x:1')
    assert.equal(
      e.message,
      'run t1-r2 ran image sha256:bbbbbbbbbbbb, but run t1-r1 ran sha256:aaaaaaaaaaaa: the tag x:1 moved during the audit',
    )
    assert.match(e.hint, /pin the image \(--image NAME@sha256:DIGEST, or its ID\)/)
    // the first cell already differs from the image inspected here (the launch plan's)
    const first = imageDrift('t', 'x:1', {id: A, where: 'node vm'}, [], {run: 't1-r1', id: B})!
    assert.match(
      first.message,
      /^run t1-r1 ran image sha256:bbbbbbbbbbbb, but the launch plan was made from sha256:aaaaaaaaaaaa \(image inspect on node vm\)/,
    )
  })

  test('inspect task: version and image inspect only, unless the entrypoint’s file is to be read (then create, cp -L, rm)', () => {
    const plain = inspectSpec('docker', 'img:1')
    assert.deepEqual(Object.keys(plain.inspect).sort(), ['engine', 'image', 'inspect_out', 'version_format'])
    assert.equal(plain.inspect.version_format, '{{.Server.Version}} {{.Server.Os}}/{{.Server.Arch}}')
    const read = inspectSpec('docker', 'img:1', {imageId: A, paths: ['/e.sh', '/usr/bin/e.sh']}).inspect
    assert.deepEqual(read.read, ['/e.sh', '/usr/bin/e.sh'])
    assert.equal(read.read_image, A)
    assert.deepEqual(read.cp, ['cp', '-L'])
    assert.deepEqual(read.create!.slice(0, 3), ['create', '--network', 'none'])
    assert.ok(read.create!.includes('--entrypoint'))
    // podman cp always follows a link
    assert.deepEqual(inspectSpec('podman', 'img:1', {imageId: A, paths: ['/e']}).inspect.cp, ['cp'])
  })

  test('inspect answer: the server and node; a failed or cut-short task is one line naming the node, with the fix', () => {
    const base: NodeStatus = {exit: 0, signal: null, seconds: 1, timed_out: false, terminated: null, stderr_tail: '', node: 'gpu7'}
    const ok = inspectAnswer({...base, inspect: {version: '24.0.1 linux/amd64', ok: true, error: '', file: null}}, 't', 'docker')
    assert.deepEqual(ok, {server: {version: '24.0.1', os: 'linux', architecture: 'amd64'}, where: 'node gpu7', file: null})
    const absent = () =>
      inspectAnswer(
        {
          ...base,
          exit: 1,
          inspect: {version: '24', ok: false, error: 'image x:1 is not present and could not be pulled: denied', file: null},
        },
        't',
        'docker',
      )
    assert.throws(absent, (e: Error & {hint: string; subject: string}) => {
      assert.equal(e.message, 'on node gpu7: image x:1 is not present and could not be pulled: denied')
      assert.match(e.hint, /build or load the image on the nodes/)
      assert.equal(e.subject, 't')
      return true
    })
    const down = () =>
      inspectAnswer(
        {...base, inspect: {version: '', ok: false, error: 'the podman engine is not answering: boom', file: null}},
        't',
        'podman',
      )
    assert.throws(down, (e: Error & {hint: string}) => /`podman info`/.test(e.hint))
    // TERM (scancel, the time limit) before the answer; a status with no answer at all (untrusted)
    assert.throws(() => inspectAnswer({...base, terminated: 'SIGTERM'}, 't', 'docker'), /ended before it answered \(SIGTERM\)/)
    assert.throws(() => inspectAnswer(base, 't', 'docker'), /ended before it answered \(no answer\)/)
  })

  test('identify task: a python target’s interpreter as the node has it; one line naming the node when it has none', () => {
    assert.deepEqual(identifySpec('/opt/py/bin/python3').identify, {python: '/opt/py/bin/python3'})
    const base: NodeStatus = {exit: 0, signal: null, seconds: 0.01, timed_out: false, terminated: null, stderr_tail: '', node: 'gpu7'}
    const id = pythonIdentity(
      {...base, identify: {real_path: '/opt/py/bin/python3.11', size: 6000, mtime: '2026-01-02T03:04:05.678Z', error: ''}},
      '/opt/py/bin/python3',
      't',
    )
    assert.equal(id.kind, 'python')
    assert.equal(id.details['real_path'], '/opt/py/bin/python3.11')
    assert.equal(id.details['identified_on'], 'node gpu7')
    const missing = {...base, exit: 1, identify: {real_path: null, size: null, mtime: null, error: '/x/python3 does not exist'}}
    assert.throws(
      () => pythonIdentity(missing, '/x/python3', 't'),
      /^ReproError: on node gpu7: \/x\/python3 does not exist$|on node gpu7: \/x\/python3 does not exist/,
    )
    assert.throws(() => pythonIdentity({...base, terminated: 'SIGTERM'}, '/x/python3', 't'), /without an answer \(SIGTERM\)/)
  })
})
