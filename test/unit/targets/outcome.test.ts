// Every way a probe run can end becomes one line with its fix, in one place; the fixes name
// only flags that exist.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {chmodSync, mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import Audit from '../../../src/commands/audit.js'
import {PythonTarget} from '../../../src/targets/python.js'
import {explainOutcome, type ProbeJob, type ProbeOutcome, runProbe, type Target} from '../../../src/targets/target.js'

const target = (kind: Target['kind']): Target =>
  ({
    kind,
    name: `${kind}:x`,
    identify: async () => ({kind, reference: 'x', details: {}}),
    cacheIdentity: async () => ({}),
    runProbeImpl: async () => ({kind: 'exited', exitCode: 0, seconds: 0, stderrTail: ''}),
  }) as Target

const job = (dir: string): ProbeJob => ({mode: 'train', inputDir: dir, outDir: dir, timeoutMs: 3000, env: {}})
const ended = {seconds: 1, stderrTail: 'Traceback…\nRuntimeError: boom\n'}
const OUTCOMES: ProbeOutcome[] = [
  {kind: 'timed-out', limitSeconds: 3, ...ended},
  {kind: 'out-of-memory', limit: '80m', ...ended},
  {kind: 'out-of-memory', limit: null, ...ended},
  {kind: 'killed', signal: 'SIGKILL', ...ended},
  {kind: 'no-interpreter', interpreter: 'python3', ...ended},
  {kind: 'exited', exitCode: 1, ...ended},
  {kind: 'no-interpreter', interpreter: 'python3', tried: ['python3', 'python'], searchPath: '/opt/conda/bin:/usr/bin', ...ended},
  {kind: 'no-interpreter', interpreter: 'python3', tried: ['python3', 'python'], entrypoint: '/usr/local/bin/_entrypoint.sh', ...ended},
  {kind: 'no-interpreter', interpreter: '/opt/env/bin/python', tried: ['/opt/env/bin/python'], searchPath: '/usr/bin', ...ended},
  {kind: 'work-area-full', cap: '64m', phase: 'probe', ...ended},
  {kind: 'work-area-full', cap: '64k', phase: 'inputs', ...ended},
  {kind: 'entrypoint-failed', entrypoint: '/entrypoint.sh', exitCode: 2, ...ended},
  {kind: 'engine-lost', engine: 'docker', detail: 'Cannot connect to the Docker daemon at unix:///x.sock', ...ended},
  {kind: 'slurm-ended', jobId: '12', state: 'TIMEOUT', reason: 'TimeLimit', ...ended},
  {kind: 'slurm-ended', jobId: '13', state: 'CANCELLED', reason: 'None', ...ended},
]

describe('probe outcomes → one-line errors', () => {
  const empty = mkdtempSync(path.join(os.tmpdir(), 'repro-outcome-'))
  test('each outcome names the target, what happened and the fix', async () => {
    const lines = await Promise.all(OUTCOMES.map(async (o) => (await explainOutcome(target('docker'), o, empty)).oneLine()))
    assert.match(lines[0]!, /^docker:x: the probe timed out after 3 s; the container was killed and removed — raise --timeout/)
    assert.match(lines[1]!, /ran out of memory \(killed at the --memory 80m limit\) — raise --memory, or lower --rows$/)
    assert.match(lines[2]!, /ran out of memory — free memory, or lower --rows$/)
    assert.match(lines[3]!, /was killed \(SIGKILL; out of memory\?\)/)
    assert.match(lines[4]!, /the image has no python3 — use an image with python3 and torch/)
    assert.match(lines[5]!, /the probe crashed \(exit 1\): RuntimeError: boom/)
    assert.match(
      lines[6]!,
      /the image has neither python3 nor python on its PATH \(\/opt\/conda\/bin:\/usr\/bin\) — .* name its interpreter with --python-in-image PATH$/,
    )
    assert.match(lines[7]!, /neither python3 nor python on the PATH its entrypoint \/usr\/local\/bin\/_entrypoint\.sh sets/)
    assert.match(lines[8]!, /the image has no \/opt\/env\/bin\/python on its PATH .* — check the path given to --python-in-image/)
    assert.match(
      lines[9]!,
      /the container's work area ran full \(--work-area 64m\) while the probe ran; the container and its volume were removed — raise --work-area/,
    )
    assert.match(lines[10]!, /work area ran full \(--work-area 64k\) while the probe's inputs were copied in/)
    assert.match(
      lines[11]!,
      /entrypoint \/entrypoint\.sh exited \(2\) before it started python: RuntimeError: boom — .*--image-entrypoint skip$/,
    )
    assert.match(
      lines[12]!,
      /the docker engine stopped answering during the run \(Cannot connect to the Docker daemon at unix:\/\/\/x\.sock\) — check the engine \(docker info\)/,
    )
    assert.match(
      lines[13]!,
      /^docker:x: Slurm ended job 12 \(TIMEOUT, TimeLimit\) before the probe finished; its container was removed: RuntimeError: boom — raise --slurm-time/,
    )
    assert.match(lines[14]!, /Slurm ended job 13 \(CANCELLED\) before the probe finished; .* — the job was cancelled/)
    for (const l of lines) assert.ok(!l.includes('\n'))
    const local = (await explainOutcome(target('python'), OUTCOMES[0]!, empty)).oneLine()
    assert.match(local, /^python:x: the probe timed out after 3 s and was killed — raise --timeout/)
  })

  test('a run elsewhere (a Slurm job) adds where it ran and its last stderr line, unless the message has it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-outcome-'))
    const failing = (o: ProbeOutcome): Target => ({...target('docker'), runProbeImpl: async () => o})
    const where = 'Slurm job 7 on vm: FAILED'
    const timedOut = await runProbe(failing({kind: 'timed-out', limitSeconds: 3, ...ended, where}), job(dir)).catch((e) => e)
    assert.match(
      timedOut.oneLine(),
      /timed out after 3 s; .* \(Slurm job 7 on vm: FAILED; last stderr line: RuntimeError: boom\) — raise --timeout/,
    )
    const crashed = await runProbe(failing({kind: 'exited', exitCode: 1, ...ended, where}), job(dir)).catch((e) => e)
    assert.match(crashed.oneLine(), /crashed \(exit 1\): RuntimeError: boom \(Slurm job 7 on vm: FAILED\) — /)
    assert.equal(crashed.code, 2)
  })

  test('a probe error written to run.json wins over the crash text', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-outcome-'))
    writeFileSync(path.join(dir, 'run.json'), JSON.stringify({status: 'error', error: {type: 'data_hash_mismatch', message: 'sha'}}))
    const e = await explainOutcome(target('python'), {kind: 'exited', exitCode: 3, ...ended}, dir)
    assert.match(e.oneLine(), /training data arrived corrupted/)
  })

  test('a failure inside the target names the torch version the probe saw', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-outcome-'))
    writeFileSync(
      path.join(dir, 'run.json'),
      JSON.stringify({status: 'error', error: {type: 'exception', message: 'RuntimeError: no LSTM primitive'}}),
    )
    writeFileSync(path.join(dir, 'fingerprint.json'), JSON.stringify({torch: {version: '2.6.0+debian'}}))
    const e = await explainOutcome(target('docker'), {kind: 'exited', exitCode: 3, ...ended}, dir)
    assert.match(e.oneLine(), /^docker:x: the probe failed: exception: RuntimeError: no LSTM primitive \(torch 2\.6\.0\+debian\) — /)
  })

  test('hints name only flags `repro audit` has', async () => {
    const flags = new Set(Object.keys({...Audit.flags, ...Audit.baseFlags}))
    for (const o of OUTCOMES) {
      for (const kind of ['python', 'docker'] as const) {
        const e = await explainOutcome(target(kind), o, empty)
        for (const m of `${e.message} ${e.hint}`.matchAll(/--([a-z][a-z-]*)/g)) assert.ok(flags.has(m[1]!), `--${m[1]} in "${e.oneLine()}"`)
      }
    }
  })

  // an audit without a run cache measures the host once a run is under way (audit.ts)
  test("onStarted: at the local probe's spawn, not at its end; at a run's end at the latest, even a failed one", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-outcome-'))
    const interpreter = path.join(dir, 'slow-python')
    writeFileSync(interpreter, '#!/bin/sh\nsleep 0.6\n')
    chmodSync(interpreter, 0o755)
    let startedAt = 0
    await runProbe(new PythonTarget(interpreter), {...job(dir), onStarted: () => (startedAt ||= Date.now())})
    const endedAt = Date.now()
    assert.ok(startedAt > 0, 'onStarted was called')
    assert.ok(endedAt - startedAt >= 500, `onStarted came ${endedAt - startedAt} ms before the end of a run of 0.6 s`)

    // a target that never says: called when its run ends, whether it went well or not
    let calls = 0
    const onStarted = () => calls++
    await runProbe(target('python'), {...job(dir), onStarted})
    assert.equal(calls, 1)
    const failing = {...target('docker'), runProbeImpl: () => Promise.reject(new Error('engine gone'))} as Target
    await assert.rejects(runProbe(failing, {...job(dir), onStarted}), /engine gone/)
    assert.equal(calls, 2)
  })
})
