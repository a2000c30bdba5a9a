// `repro run` and `repro fingerprint` once their flags are parsed: the probe in one target,
// into a run directory (train) or a temp directory (fingerprint only).

import {promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {defaultProbeConfig} from '../core/config.js'
import type {Fingerprint} from '../core/types.js'
import type {WorkloadName} from '../core/workloads.js'
import {encodeWorkloadData} from '../artifacts/inputs.js'
import {gitState} from '../env/git.js'
import {hostFingerprint} from '../env/host.js'
import {ReproError} from '../errors.js'
import type {TargetIdentity} from '../targets/target.js'
import {type DataOptions, resolveWorkloadData} from './data.js'
import {fingerprintRun, trainRun} from './execute.js'
import {ensureOutDir} from './out-dir.js'
import {stderrProgress} from './progress.js'
import {findPythonWithTorch, type TargetRef, type TargetSettings, targetsFromRefs} from './targets.js'

export interface RunRequest {
  refs: TargetRef[]
  settings: TargetSettings
  data: DataOptions
  workloads: WorkloadName[]
  seed: number
  epochs: number
  storeSteps: number[] | null
  timeoutSeconds: number
  outDir: string
  progress: boolean
}

export interface RunResult {
  dir: string
  target: string
  seconds: number
  final: {val_accuracy: number | null; val_loss: number | null; train_loss: number | null}
  steps: number
  knobs_effective: Record<string, unknown>
}

export async function runOne(req: RunRequest): Promise<RunResult> {
  if (req.refs.length !== 1)
    throw new ReproError(`run takes exactly one target, got ${req.refs.length}`, {
      subject: 'run',
      hint: 'pass one --python PATH or --image NAME (use `repro audit` for several)',
    })
  if (req.workloads.length !== 1)
    throw new ReproError(`run trains one workload, got ${req.workloads.join(', ')}`, {
      subject: '--workload',
      hint: 'pass one --workload (use `repro audit` for several)',
    })
  const workload = req.workloads[0]!
  const [spec] = await targetsFromRefs(req.refs, req.settings)
  const {target, knobs} = spec!
  const data = encodeWorkloadData((await resolveWorkloadData([workload], req.data))[workload]!)
  const config = {...defaultProbeConfig({file: 'data.safetensors', sha256: data.sha256}, req.seed, workload), knobs}
  config.train.epochs = req.epochs
  config.trace.store_steps = req.storeSteps
  const outDir = path.resolve(req.outDir)
  await ensureOutDir(outDir)
  const progress = stderrProgress(req.progress)
  const [host, git] = await Promise.all([hostFingerprint(), gitState()])
  progress.start(target.name)
  const timeoutMs = req.timeoutSeconds * 1000
  const {artifacts, seconds} = await trainRun({
    target,
    config,
    data: data.bytes,
    outDir,
    timeoutMs,
    label: target.name,
    context: {host, git},
  })
  progress.done(target.name, seconds)
  const o = artifacts.outcome
  return {dir: outDir, target: target.name, seconds, final: o.final, steps: o.steps, knobs_effective: o.knobs_effective}
}

export interface FingerprintResult {
  target: string
  identity: TargetIdentity
  fingerprint: Fingerprint
}

/** The fingerprint of one target; with none given, of the host's first python with torch. */
export async function fingerprintOne(refs: TargetRef[], settings: TargetSettings, timeoutSeconds: number): Promise<FingerprintResult> {
  if (refs.length > 1)
    throw new ReproError(`fingerprint takes one target, got ${refs.length}`, {
      subject: 'fingerprint',
      hint: 'pass one --python PATH or --image NAME',
    })
  const chosen = refs.length ? refs : [{kind: 'python' as const, value: await findPythonWithTorch()}]
  const [spec] = await targetsFromRefs(chosen, settings)
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'repro-fingerprint-'))
  try {
    const config = {...defaultProbeConfig({file: 'data.safetensors', sha256: ''}), knobs: spec!.knobs}
    const label = spec!.target.name
    const {fingerprint, identity} = await fingerprintRun({
      target: spec!.target,
      config,
      data: null,
      outDir: work,
      timeoutMs: timeoutSeconds * 1000,
      label,
    })
    return {target: label, identity, fingerprint}
  } finally {
    await fs.rm(work, {recursive: true, force: true})
  }
}
