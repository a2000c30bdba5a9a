// `repro prepare`: an audit's run matrix (its targets × workloads × planned runs), staged without
// running anything, for a machine where repro itself does not run (a GPU box with python, torch
// and maybe an engine; no node.js). The plan is the audit's own (planRuns, targetConfig; images
// inspected here and launched as a local run launches them), and each run is staged exactly as a
// Slurm job is (stageRun: spec.json, `repro.prepared/2`). manifest.json lists the runs; run.sh
// runs each through probe/node_runner.py. Bring the folder back and `repro compare` it.

import {promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {planRuns} from '../core/audit-plan.js'
import {DATA_FILE, encodeWorkloadData, writeProbeInputs} from '../artifacts/inputs.js'
import {type PreparedManifest, type PreparedRun, type PreparedTarget, preparedManifest, runScript} from '../artifacts/prepared.js'
import {KnobError, parseKnobOverride} from '../core/knobs.js'
import {ReproError} from '../errors.js'
import type {EncodedData} from '../artifacts/inputs.js'
import type {AuditWorkload} from './audit-types.js'
import {resolveScriptSpec, scriptDigest, writeScriptInputs} from './script-inputs.js'
import {ContainerTarget} from '../targets/container.js'
import {preparedLabels} from '../targets/engine.js'
import {copyNodeRunner, copyProbePackage, type StagedLaunch, stageRun} from '../targets/node-run.js'
import {PythonTarget} from '../targets/python.js'
import {hostProbeEnv, type Target} from '../targets/target.js'
import {type AuditRequest, checkDistributed} from './audit-request.js'
import {runDirName, targetConfig} from './collect.js'
import {resolveWorkloadData} from './data.js'
import {ensureOutDir} from './out-dir.js'
import {targetsFromRefs} from './targets.js'

export type PrepareRequest = Pick<
  AuditRequest,
  | 'refs'
  | 'settings'
  | 'data'
  | 'workloads'
  | 'script'
  | 'repeats'
  | 'seed'
  | 'seeds'
  | 'epochs'
  | 'storeSteps'
  | 'timeoutSeconds'
  | 'outDir'
  | 'command'
> & {
  /** `--variants`: each target's variant name, by position (the targets are the variants' pythons) */
  variants?: string[]
}

export interface PrepareResult {
  dir: string
  manifest: PreparedManifest
}

/** A named knob variant of `--variants FILE`: the --set list of one `--python` target. */
export interface Variant {
  name: string
  /** knob settings in --set syntax without a target number (key=value, env.NAME=value) */
  set: string[]
}

const VARIANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

/** Variants from a JSON file: [{"name": "tf32", "set": ["device=cuda", "tf32_matmul=true"]}, …] (pure). */
export function parseVariants(text: string, subject: string): Variant[] {
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    throw new ReproError('the variants file is not JSON', {subject, hint: 'write a JSON list of {"name": …, "set": ["key=value", …]}'})
  }
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > 100) {
    throw new ReproError('the variants file must be a JSON list of 1 to 100 variants', {
      subject,
      hint: 'write [{"name": "default", "set": []}, …]',
    })
  }
  const names = new Set<string>()
  return raw.map((v, i) => {
    const ok =
      v &&
      typeof v === 'object' &&
      typeof v.name === 'string' &&
      VARIANT_NAME.test(v.name) &&
      Array.isArray(v.set) &&
      v.set.every((s: unknown) => typeof s === 'string')
    if (!ok)
      throw new ReproError(`variant ${i + 1} is not {"name": "<letters, digits, - or _>", "set": ["key=value", …]}`, {
        subject,
        hint: 'fix that variant',
      })
    if (names.has(v.name)) throw new ReproError(`two variants are named ${v.name}`, {subject, hint: 'give each variant its own name'})
    names.add(v.name)
    for (const text of v.set as string[]) {
      try {
        if (parseKnobOverride(text).target !== null)
          throw new KnobError(`${JSON.stringify(text)} names a target; a variant's settings are its own`)
      } catch (e) {
        if (e instanceof KnobError)
          throw new ReproError(`variant ${v.name}: ${e.message}`, {
            subject,
            hint: 'write its settings as --set takes them, e.g. tf32_matmul=true',
          })
        throw e
      }
    }
    return {name: v.name, set: v.set}
  })
}

/**
 * The variants as an audit's targets (pure): variant N is `--python PYTHON` target N with its
 * settings as `--set N:…`, after any `--set` given (the variant's own win).
 */
export function variantTargets(
  variants: Variant[],
  python: string,
  set: string[] = [],
): {refs: {kind: 'python'; value: string}[]; set: string[]; names: string[]} {
  return {
    refs: variants.map(() => ({kind: 'python' as const, value: python})),
    set: [...set, ...variants.flatMap((v, i) => v.set.map((s) => `${i + 1}:${s}`))],
    names: variants.map((v) => v.name),
  }
}

export async function prepareRuns(req: PrepareRequest): Promise<PrepareResult> {
  const outDir = path.resolve(req.outDir)
  // a mistake in the script's flags is reported before any target is looked at; the prepared
  // folder is never part of the project copy, wherever it lies
  const resolved = req.script ? await resolveScriptSpec(req.script) : undefined
  const script = resolved ? {...resolved, exclude: [...resolved.exclude, outDir]} : undefined
  if (req.refs.length === 0)
    throw new ReproError('repro prepare needs targets', {
      subject: 'prepare',
      hint: 'name them as for an audit, e.g. --python /usr/bin/python3 --image IMAGE',
    })
  // the runs' device is asked for explicitly: this host's GPU (auto) says nothing about the machine that runs them
  const settings = {...req.settings, device: req.settings.device === 'cuda' ? 'cuda' : 'cpu'}
  if (req.variants && req.variants.length !== req.refs.length) throw new Error('one variant name per target')
  const targets = await targetsFromRefs(req.refs, settings)
  checkDistributed(targets, Boolean(script))
  // a user's script brings its own data: no data file, and the project's digest instead
  const workloads: AuditWorkload[] = script ? ['script'] : req.workloads
  const data = script ? {} : await resolveWorkloadData(req.workloads, req.data)
  const none: EncodedData = {bytes: Buffer.alloc(0), sha256: ''}
  const encoded = new Map(workloads.map((w) => [w, w === 'script' ? none : encodeWorkloadData(data[w]!)]))
  const scriptSha256 = script ? await scriptDigest(script) : ''
  await ensureOutDir(outDir)
  await copyNodeRunner(path.join(outDir, 'probe'))
  // python runs share one probe package and one data file per workload (an image run carries
  // both in its inputs tar): a folder of 80 runs is ~4 MB instead of ~88 MB
  await copyProbePackage(path.join(outDir, 'probe'))
  const sharedData = new Set<string>()
  const timeoutMs = req.timeoutSeconds * 1000
  const opts = {seed: req.seed, epochs: req.epochs, storeSteps: req.storeSteps, targets, timeoutMs, ...(script ? {script} : {})}
  const records: PreparedTarget[] = []
  const runs: PreparedRun[] = []
  const scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'repro-prepare-'))
  try {
    for (const [i, spec] of targets.entries()) {
      const launch = await stagedLaunch(spec.target)
      const variant = req.variants ? {variant: req.variants[i]!} : {}
      records.push({
        ...variant,
        index: i + 1,
        name: spec.target.name,
        kind: spec.target.kind,
        reference: req.refs[i]!.value,
        image_id: launch.kind === 'image' ? (await launch.target.imageId()).id : null,
        knobs: spec.knobs,
      })
      for (const w of workloads) {
        const {bytes, sha256} = encoded.get(w)!
        const config = targetConfig(opts, w, sha256, spec.knobs, scriptSha256)
        for (const planned of planRuns(i + 1, req.repeats, req.seed, req.seeds)) {
          const dir = runDirName(w, planned.dir)
          const inputDir = path.join(scratch, dir)
          // a python run reads its workload's data from the folder's data/ (the probe checks its sha256)
          const shared = launch.kind === 'python' && bytes.length > 0
          const file = shared ? `../../data/${sha256}.safetensors` : DATA_FILE
          if (shared && !sharedData.has(sha256)) {
            await fs.mkdir(path.join(outDir, 'data'), {recursive: true})
            await fs.writeFile(path.join(outDir, 'data', `${sha256}.safetensors`), bytes)
            sharedData.add(sha256)
          }
          const cell = {...config, data: {...config.data, file}, train: {...config.train, seed: planned.seed}}
          await writeProbeInputs(inputDir, cell, bytes.length && !shared ? bytes : null)
          if (script) await writeScriptInputs(inputDir, script, scriptSha256)
          // a folder prepared again starts clean: no status or artifacts of an earlier run
          const stage = path.join(outDir, dir)
          await fs.rm(stage, {recursive: true, force: true})
          await fs.mkdir(stage, {recursive: true})
          const job = {
            mode: script ? ('script' as const) : ('train' as const),
            inputDir,
            outDir: stage,
            timeoutMs,
            env: {...hostProbeEnv(), ...spec.knobs.env},
          }
          const staged = await stageRun(stage, job, launch)
          runs.push({dir, ...variant, target: i + 1, workload: w, repeat: planned.repeat, seed: planned.seed, spec: staged.spec})
        }
      }
    }
  } finally {
    await fs.rm(scratch, {recursive: true, force: true})
  }
  const manifest = preparedManifest({
    created: new Date().toISOString(),
    command: req.command,
    settings: {
      repeats: req.repeats,
      seeds: req.seeds,
      seed: req.seed,
      epochs: req.epochs,
      workloads,
      timeout_seconds: req.timeoutSeconds,
    },
    targets: records,
    runs,
  })
  await fs.writeFile(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2))
  await fs.writeFile(path.join(outDir, 'run.sh'), runScript(runs), {mode: 0o755})
  return {dir: outDir, manifest}
}

/** How a target's runs start once staged: its interpreter, or its image's launch plan made here. */
async function stagedLaunch(target: Target): Promise<StagedLaunch> {
  if (target instanceof PythonTarget) return {kind: 'python', interpreter: target.interpreter, sharedProbe: '../probe'}
  if (target instanceof ContainerTarget) {
    const {plan, interpreter} = await target.firstLaunch()
    // no Slurm allocation: the container keeps the limits given (--memory, --cpus or their defaults)
    return {kind: 'image', target, plan, interpreter, limitsFromAllocation: {memory: false, cpus: false}, labels: preparedLabels()}
  }
  throw new Error(`not a python or image target: ${target.name}`)
}
