// `repro prepare` (docs/scale-out.md): an audit's runs staged as repro.prepared/2 folders, run by
// run.sh through probe/node_runner.py with no repro process (the image with docker, the python
// directly), then compared here: the same verdict, first divergence and trace digests as
// `repro audit` of the same two targets, and no container left behind.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {readRunDir} from '../../src/artifacts/run-dir.js'
import {traceDigest} from '../../src/artifacts/trace-digest.js'
import {collectStagedRun} from '../../src/targets/node-run.js'
import {assertPrerequisite, engineMissing, needs, PYTHON, ROOT, repro, tmpDir} from './helpers.js'

const FAST = ['--epochs', '1', '--rows', '512', '--repeats', '1']
const IMAGE = 'repro-fixture:trixie'
const TARGETS = ['--image', IMAGE, '--python', PYTHON]

/** What compare's or audit's JSON says about the one cross comparison. */
function verdictOf(stdout: string) {
  const r = JSON.parse(stdout)
  const cross = r.comparisons.filter((c: {role: string}) => c.role === 'cross')
  assert.equal(cross.length, 1)
  return {status: r.verdict.status, exit: r.verdict.exit_code, first: cross[0].divergence.first_divergence}
}

/** The trace digest of a run run.sh ran (its artifacts collected as compare collects them). */
async function stagedDigest(stage: string, image: boolean): Promise<string> {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'repro-staged-'))
  try {
    await collectStagedRun(stage, tmp, stage, image ? {truncated: false, required: true, stderrTail: ''} : null)
    return traceDigest((await readRunDir(tmp, stage)).trace).root
  } finally {
    rmSync(tmp, {recursive: true, force: true})
  }
}

describe('repro prepare → run.sh → repro compare', () => {
  const docker = engineMissing('docker', [IMAGE])
  test('an image and a python target: the audit’s verdict, first divergence and digests, nothing left', needs(docker), async () => {
    assertPrerequisite(docker)
    const out = tmpDir()
    const prepared = repro(['prepare', ...TARGETS, ...FAST, '--out', out, '--json'])
    assert.equal(prepared.status, 0, prepared.stderr)
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'))
    assert.equal(manifest.schema, 'repro.prepared/2')
    assert.deepEqual(
      manifest.runs.map((r: {dir: string; target: number; workload: string; repeat: number}) => [r.dir, r.target, r.workload, r.repeat]),
      [
        ['t1-r1', 1, 'mlp', 1],
        ['t2-r1', 2, 'mlp', 1],
      ],
    )
    // each run is staged as a Slurm job is: its spec.json is the manifest's, the image by name
    const [imageRun, pythonRun] = manifest.runs
    assert.deepEqual(JSON.parse(readFileSync(path.join(out, 't1-r1', 'spec.json'), 'utf8')), imageRun.spec)
    assert.equal(imageRun.spec.image.image, IMAGE)
    assert.ok(existsSync(path.join(out, 't1-r1', 'inputs.tar')))
    assert.equal(pythonRun.spec.python, PYTHON)
    assert.ok(existsSync(path.join(out, 't2-r1', 'inputs', 'config.json')))
    // python runs share the folder's one probe package and one data file per workload (the GPU
    // flow's 80 runs were 88 MB with a copy in each run, past what a device machine is sent)
    assert.ok(!existsSync(path.join(out, 't2-r1', 'probe')) && !existsSync(path.join(out, 't2-r1', 'inputs', 'data.safetensors')))
    assert.equal(pythonRun.spec.env.PYTHONPATH, '../probe')
    assert.ok(existsSync(path.join(out, 'probe', 'repro_probe', '__main__.py')))
    const cfg = JSON.parse(readFileSync(path.join(out, 't2-r1', 'inputs', 'config.json'), 'utf8'))
    assert.ok(existsSync(path.join(out, 't2-r1', 'inputs', cfg.data.file)), cfg.data.file)

    // compare before run.sh: one line per run that has not run
    const early = repro(['compare', out])
    assert.equal(early.status, 2)
    assert.match(early.stdout + early.stderr, /t1-r1 has not run yet/)

    // run.sh with no repro process: only python3 and docker
    const ran = spawnSync('sh', [path.join(out, 'run.sh')], {encoding: 'utf8', timeout: 300_000, cwd: os.tmpdir()})
    assert.equal(ran.status, 0, ran.stderr)
    assert.deepEqual(
      spawnSync('docker', ['ps', '-aq', '--filter', 'label=repro.prepared=1'], {encoding: 'utf8'}).stdout.trim(),
      '',
      'run.sh left a container',
    )

    const compared = repro(['compare', out, '--json'])
    const audited = repro(['audit', ...TARGETS, ...FAST, '--no-explain', '--no-cache', '--out', tmpDir(), '--json'])
    assert.equal(audited.status, 1, audited.stderr)
    assert.equal(compared.status, audited.status, compared.stderr)
    assert.deepEqual(verdictOf(compared.stdout), verdictOf(audited.stdout))
    // bitwise the audit's own runs of each target
    const digests = JSON.parse(audited.stdout).targets.map((t: {trace_digest: {root: string}}) => t.trace_digest.root)
    assert.deepEqual([await stagedDigest(path.join(out, 't1-r1'), true), await stagedDigest(path.join(out, 't2-r1'), false)], digests)
    // one run folder compares too
    const single = repro(['compare', path.join(out, 't2-r1'), path.join(out, 't2-r1'), '--json'])
    assert.equal(single.status, 0, single.stderr)
  })

  test('--script: each run carries the project copy; compare gives the audit’s verdict and digests', async () => {
    const cwd = path.join(ROOT, 'examples', 'ml-repo')
    const args = [
      '--python',
      PYTHON,
      '--python',
      PYTHON,
      '--script',
      'train.py',
      '--script-args',
      '--epochs 2',
      '--max-steps',
      '20',
      '--repeats',
      '1',
    ]
    const out = tmpDir()
    const prepared = repro(['prepare', ...args, '--out', out], {cwd})
    assert.equal(prepared.status, 0, prepared.stderr)
    const manifest = JSON.parse(readFileSync(path.join(out, 'manifest.json'), 'utf8'))
    assert.deepEqual(
      manifest.runs.map((r: {dir: string; workload: string}) => [r.dir, r.workload]),
      [
        ['t1-script-r1', 'script'],
        ['t2-script-r1', 'script'],
      ],
    )
    assert.deepEqual(manifest.runs[0].spec.argv.slice(0, 3), ['-m', 'repro_probe', 'script'])
    assert.ok(existsSync(path.join(out, 't1-script-r1', 'inputs', 'project', 'train.py')))
    const ran = spawnSync('sh', [path.join(out, 'run.sh')], {encoding: 'utf8', timeout: 300_000, cwd: os.tmpdir()})
    assert.equal(ran.status, 0, ran.stderr)
    const compared = repro(['compare', out, '--json'])
    const audited = repro(['audit', ...args, '--no-explain', '--no-cache', '--out', tmpDir(), '--json'], {cwd})
    assert.equal(compared.status, audited.status, compared.stderr + audited.stderr)
    assert.deepEqual(verdictOf(compared.stdout), verdictOf(audited.stdout))
    const digests = JSON.parse(audited.stdout).targets.map((t: {trace_digest: {root: string}}) => t.trace_digest.root)
    assert.deepEqual(
      [await stagedDigest(path.join(out, 't1-script-r1'), false), await stagedDigest(path.join(out, 't2-script-r1'), false)],
      digests,
    )
  })

  test('a folder of the old format (repro.prepared/1) is one line for compare, exit 2', () => {
    const dir = tmpDir()
    spawnSync('sh', ['-c', `echo '{"schema": "repro.prepared/1", "runs": []}' > ${dir}/manifest.json`])
    const r = repro(['compare', dir, dir])
    assert.equal(r.status, 2)
    assert.match(r.stderr, /repro\.prepared\/1 \(an older repro prepare\)/)
  })
})
