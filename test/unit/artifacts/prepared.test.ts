import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {
  cleanEnd,
  endedHow,
  type PreparedTarget,
  parseNodeStatus,
  parsePreparedManifest,
  preparedManifest,
  type RunSpec,
  runScript,
} from '../../../src/artifacts/prepared.js'

const KNOBS = {device: 'cpu', env: {}}
const TARGETS: PreparedTarget[] = [
  {index: 1, name: 'docker:repro-fixture:trixie', kind: 'docker', reference: 'repro-fixture:trixie', image_id: 'sha256:abc', knobs: KNOBS},
  {index: 2, name: 'python:/usr/bin/python3', kind: 'python', reference: '/usr/bin/python3', image_id: null, knobs: KNOBS},
]
const PY_SPEC: RunSpec = {
  schema: 'repro.prepared/2',
  python: '/usr/bin/python3',
  argv: ['-m', 'repro_probe', 'train', '--config', './inputs/config.json', '--out', './out'],
  env: {PYTHONPATH: './probe'},
  timeout_seconds: 600,
  status: 'status.json',
}
const SETTINGS = {repeats: 1, seeds: 1, seed: 1234, epochs: 1, workloads: ['mlp'], timeout_seconds: 600}

function manifest(runs: {dir: string; target: number}[]) {
  return preparedManifest({
    created: '2026-12-03T00:00:00.000Z',
    command: 'repro prepare',
    settings: SETTINGS,
    targets: TARGETS,
    runs: runs.map((r) => ({...r, workload: 'mlp', repeat: 1, seed: 1234, spec: PY_SPEC})),
  })
}

describe('repro.prepared/2 manifest', () => {
  test('written and read back: each run with its folder, target, workload, repeat and seed, in plan order', () => {
    const m = manifest([
      {dir: 't1-r1', target: 1},
      {dir: 't2-r1', target: 2},
    ])
    assert.equal(m.schema, 'repro.prepared/2')
    const read = parsePreparedManifest(JSON.stringify(m))
    assert.deepEqual(read, {
      ok: true,
      runs: [
        {dir: 't1-r1', target: 1, targetName: 'docker:repro-fixture:trixie', workload: 'mlp', repeat: 1, seed: 1234},
        {dir: 't2-r1', target: 2, targetName: 'python:/usr/bin/python3', workload: 'mlp', repeat: 1, seed: 1234},
      ],
    })
  })

  test('a run naming an unlisted target, or two runs in one folder, is a bug caught when written', () => {
    assert.throws(() => manifest([{dir: 't3-r1', target: 3}]), /names target 3/)
    assert.throws(
      () =>
        manifest([
          {dir: 't1-r1', target: 1},
          {dir: 't1-r1', target: 1},
        ]),
      /share the folder t1-r1/,
    )
  })

  test('the old format is recognised as such; a folder that escapes the prepared folder is not a manifest', () => {
    assert.deepEqual(parsePreparedManifest(JSON.stringify({schema: 'repro.prepared/1', runs: []})), {ok: false, old: true})
    const m = manifest([{dir: 't1-r1', target: 1}])
    const escaping = {...m, runs: [{...m.runs[0], dir: '../elsewhere'}]}
    assert.deepEqual(parsePreparedManifest(JSON.stringify(escaping)), {ok: false, old: false})
    assert.deepEqual(parsePreparedManifest('not json'), {ok: false, old: false})
  })
})

describe('the node runner’s status.json', () => {
  const base = {exit: 0, signal: null, seconds: 1.5, timed_out: false, terminated: null, stderr_tail: '', node: 'box'}
  test('a python run ends cleanly on exit 0; an image run when the probe exited 0 in its container', () => {
    assert.equal(cleanEnd(parseNodeStatus(JSON.stringify(base))!), true)
    assert.equal(cleanEnd(parseNodeStatus(JSON.stringify({...base, exit: 1}))!), false)
    const container = {
      phase: 'status',
      error: '',
      exit_code: null,
      oom_killed: false,
      boot: {exit: 0, python: 'python3', full: false},
      out_truncated: false,
    }
    const image = {...base, exit: null, image_id: 'sha256:abc', container}
    assert.equal(cleanEnd(parseNodeStatus(JSON.stringify(image))!), true)
    const failed = parseNodeStatus(JSON.stringify({...image, container: {...container, boot: {exit: 1, python: null}}}))!
    assert.equal(cleanEnd(failed), false)
    assert.equal(endedHow(failed), 'the probe exited 1 in its container')
    assert.equal(endedHow(parseNodeStatus(JSON.stringify({...base, exit: null, timed_out: true}))!), 'timed out')
  })

  test('anything else is not a status', () => {
    assert.equal(parseNodeStatus('{"exit": "0"}'), null)
    assert.equal(parseNodeStatus('nope'), null)
  })
})

describe('run.sh', () => {
  test('runs every entry through probe/node_runner.py, goes on past a failure and exits 1', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-runsh-'))
    try {
      mkdirSync(path.join(dir, 'probe'))
      // a stand-in runner: records the spec it was given, fails for the run named it's
      writeFileSync(
        path.join(dir, 'probe', 'node_runner.py'),
        "import sys\nopen('ran.txt', 'a').write(sys.argv[1] + '\\n')\nsys.exit(1 if \"it's\" in sys.argv[1] else 0)\n",
      )
      const dirs = ['t1-r1', "it's", 't2-r1']
      writeFileSync(path.join(dir, 'run.sh'), runScript(dirs.map((d) => ({dir: d}))))
      const r = spawnSync('sh', [path.join(dir, 'run.sh')], {cwd: os.tmpdir(), encoding: 'utf8'})
      assert.equal(r.status, 1, r.stderr)
      assert.match(r.stderr, /failed: it's/)
      const ran = spawnSync('cat', [path.join(dir, 'ran.txt')], {encoding: 'utf8'}).stdout
      assert.equal(ran, "t1-r1/spec.json\nit's/spec.json\nt2-r1/spec.json\n")
      writeFileSync(path.join(dir, 'run.sh'), runScript([{dir: 't1-r1'}]))
      rmSync(path.join(dir, 'ran.txt'))
      assert.equal(spawnSync('sh', [path.join(dir, 'run.sh')]).status, 0)
    } finally {
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
