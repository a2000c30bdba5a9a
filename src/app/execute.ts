// One probe run in one target: write inputs, run, read the artifacts back validated, and
// record what the target was (target.json) so the run directory stands on its own.

import {createHash} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {ProbeConfig} from '../core/config.js'
import type {UpdateReplayPlan} from '../core/replay.js'
import type {Knobs, RunArtifacts, StoredValues, TensorValues} from '../core/types.js'
import {writeSafetensors, type SafetensorsDType} from '../artifacts/safetensors.js'
import {readCapped, readCapture, readReplayResult, readStoredValues} from '../artifacts/run-dir.js'
import {DATA_FILE, writeProbeInputs} from '../artifacts/inputs.js'
import {readFingerprintFile, readRunDir} from '../artifacts/run-dir.js'
import {runProbe, type ProbeMode, type Target} from '../targets/target.js'
import {timed} from '../env/timings.js'
import {cacheKey, probeHash, type RunCache} from './cache.js'
import {type ScriptSpec, scriptProjectContext, writeScriptInputs} from './script-inputs.js'

export interface ProbeRunRequest {
  target: Target
  config: ProbeConfig
  /** encoded data.safetensors, or null in fingerprint mode */
  data: Buffer | null
  outDir: string
  timeoutMs: number
  label: string
  /**
   * extra context written into target.json; a promise (the host's fingerprint still being
   * measured) is written when it resolves, while the run goes on
   */
  context?: object | Promise<object>
  /** train mode: called once the probe's run is under way (ProbeJob.onStarted) */
  onStarted?: () => void
  /** reuse and store runs here (train mode); `tag` separates repeats of the same config */
  cache?: {cache: RunCache; host: Record<string, unknown>; tag: string}
  /** script mode: the user's project, copied into the inputs */
  script?: ScriptSpec
  /** aborted: the run is no longer wanted (a batched target's sibling run failed) */
  signal?: AbortSignal
}

async function prepare(req: ProbeRunRequest, mode: ProbeMode) {
  const inputDir = path.join(req.outDir, 'inputs')
  await writeProbeInputs(inputDir, {...req.config, data: {...req.config.data, file: DATA_FILE}}, req.data)
  if (req.script) await writeScriptInputs(inputDir, req.script, req.config.script?.sha256 ?? '')
  const identity = await req.target.identify()
  const write = (context: object | undefined) =>
    fs.writeFile(
      path.join(req.outDir, 'target.json'),
      JSON.stringify(
        {schema: 'repro.target/1', name: req.target.name, mode, identity, knobs_requested: req.config.knobs, ...context},
        null,
        2,
      ),
    )
  const targetJson = Promise.resolve(req.context).then(write)
  if (req.context instanceof Promise)
    targetJson.catch(() => {}) // awaited by the caller once the run is done
  else await targetJson
  return {inputDir, identity, targetJson}
}

/** Waits for target.json after the run (`work`): its error if the run went well, else the run's. */
async function withTargetJson<T>(targetJson: Promise<void>, work: () => Promise<T>): Promise<T> {
  let result: T
  try {
    result = await work()
  } catch (err) {
    await targetJson.catch(() => {})
    throw err
  }
  await targetJson
  return result
}

export async function trainRun(req: ProbeRunRequest): Promise<{artifacts: RunArtifacts; seconds: number; cached: boolean}> {
  const mode: ProbeMode = req.script ? 'script' : 'train'
  const {inputDir, targetJson} = await timed('run inputs', 'inputs + target.json', () => prepare(req, mode))
  let key: string | null = null
  if (req.cache) {
    // The data file is named by its sha256 in the config, so the config hash covers the data.
    const {file: _file, ...data} = req.config.data
    key = cacheKey({
      v: 1,
      target: await timed('target identity', req.label, () => req.target.cacheIdentity()),
      probe: await timed('cache key', 'probe hash', () => probeHash()),
      config: {...req.config, data},
      host: req.cache.host,
      tag: req.cache.tag,
    })
    if (await req.cache.cache.restore(key, req.outDir)) {
      // A cached entry is read back through the same validators as a fresh run.
      return {artifacts: await timed('read cached runs', req.label, () => readRunDir(req.outDir, req.label)), seconds: 0, cached: true}
    }
  }
  const result = await withTargetJson(targetJson, async () =>
    runProbe(req.target, {
      mode,
      inputDir,
      outDir: req.outDir,
      timeoutMs: req.timeoutMs,
      env: req.config.knobs.env,
      ...(req.script ? {project: await scriptProjectContext(req.script)} : {}),
      ...(req.signal ? {signal: req.signal} : {}),
      ...(req.onStarted ? {onStarted: req.onStarted} : {}),
    }),
  )
  const artifacts = await readRunDir(req.outDir, req.label)
  if (req.cache && key) await req.cache.cache.store(key, req.outDir)
  return {artifacts, seconds: result.seconds, cached: false}
}

export async function fingerprintRun(req: ProbeRunRequest) {
  const {inputDir, identity, targetJson} = await prepare(req, 'fingerprint')
  await withTargetJson(targetJson, () =>
    runProbe(req.target, {mode: 'fingerprint', inputDir, outDir: req.outDir, timeoutMs: req.timeoutMs, env: req.config.knobs.env}),
  )
  return {fingerprint: await readFingerprintFile(req.outDir, req.label), identity}
}

export interface ReplayRunRequest {
  target: Target
  /** the knobs of the run whose update is replayed (its env reaches the probe) */
  knobs: Knobs
  plan: UpdateReplayPlan
  /** the plan's input values (replay file names → stored values of the reference run) */
  inputs: Map<string, TensorValues>
  outDir: string
  timeoutMs: number
}

const ST_DTYPE: Record<TensorValues['dtype'], SafetensorsDType> = {
  float64: 'F64',
  float32: 'F32',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
}

/** Replay one update in a target on exactly the given bytes (python -m repro_probe replay); its outputs' digests. */
export async function replayRun(req: ReplayRunRequest): Promise<{outputs: Record<string, string>; seconds: number}> {
  const inputDir = path.join(req.outDir, 'inputs')
  await fs.mkdir(inputDir, {recursive: true})
  const tensors = Object.fromEntries([...req.inputs].map(([name, v]) => [name, {dtype: ST_DTYPE[v.dtype], shape: v.shape, data: v.data}]))
  const bytes = writeSafetensors(tensors, {generator: 'repro/src/app/execute.ts (op replay)'})
  await fs.writeFile(path.join(inputDir, 'replay.safetensors'), bytes)
  const config = {
    schema: 'repro.replay/1',
    kind: req.plan.kind,
    optimizer: req.plan.optimizer,
    step: req.plan.step,
    params: req.plan.params,
    knobs: req.knobs,
    inputs: {file: 'replay.safetensors', sha256: createHash('sha256').update(bytes).digest('hex')},
  }
  await fs.writeFile(path.join(inputDir, 'config.json'), JSON.stringify(config, null, 2))
  const result = await runProbe(req.target, {mode: 'replay', inputDir, outDir: req.outDir, timeoutMs: req.timeoutMs, env: req.knobs.env})
  return {outputs: (await readReplayResult(req.outDir, req.target.name)).outputs, seconds: result.seconds}
}

/**
 * Replay one of the user's modules in a target (script mode): the script runs as in the capture run,
 * up to that module's call at that step, which is replaced by one call on the capture's exact bytes.
 */
export async function scriptReplayRun(
  req: Omit<ProbeRunRequest, 'cache' | 'data'> & {
    script: ScriptSpec
    captureDir: string
    step: number
    module: string
    toggle: {mkldnn: boolean} | null
  },
): Promise<{outputs: Record<string, string>; values: StoredValues; seconds: number; onednn?: string[]}> {
  const capture = await readCapture(req.captureDir, req.target.name)
  const captureBytes = await readCapped(req.captureDir, 'capture.safetensors', req.target.name)
  const replay = {
    step: req.step,
    module: req.module,
    capture: {file: 'capture.safetensors', sha256: createHash('sha256').update(captureBytes).digest('hex'), meta: capture.raw},
    toggle: req.toggle,
  }
  const config = {...req.config, trace: {...req.config.trace, capture: null, replay}}
  const {inputDir} = await prepare({...req, config, data: null}, 'script')
  await fs.writeFile(path.join(inputDir, 'capture.safetensors'), captureBytes)
  const result = await runProbe(req.target, {
    mode: 'script',
    inputDir,
    outDir: req.outDir,
    timeoutMs: req.timeoutMs,
    env: req.config.knobs.env,
    project: await scriptProjectContext(req.script),
  })
  const {outputs, onednn} = await readReplayResult(req.outDir, req.target.name)
  const values = await readStoredValues(req.outDir, req.target.name, 'replay.safetensors')
  return {outputs, values, seconds: result.seconds, ...(onednn ? {onednn} : {})}
}

export interface ForwardReplayRequest {
  target: Target
  /** forward / backward: one module's call (and its backward) on a capture; init: the model's initialization */
  kind: 'forward' | 'backward' | 'init'
  /** the train config of the run being reproduced (its knobs carry env and thread toggles) */
  config: ProbeConfig
  /** the workload's data (encoded), which the replay rebuilds the model around */
  data: Buffer
  /** forward / backward: the reference capture, a train run's out dir holding capture.json and capture.safetensors */
  captureDir?: string
  /** `{mkldnn: false}` switches oneDNN off in the replay process */
  toggle: {mkldnn: boolean} | null
  step?: number
  module?: string
  outDir: string
  timeoutMs: number
}

/** Replay one module's forward (or backward), or the model's initialization, in a target on exact bytes; its outputs' digests and values. */
export async function replayForwardRun(
  req: ForwardReplayRequest,
): Promise<{outputs: Record<string, string>; values: StoredValues; seconds: number; rng_before?: string; onednn?: string[]}> {
  const inputDir = path.join(req.outDir, 'inputs')
  await fs.mkdir(inputDir, {recursive: true})
  await fs.writeFile(path.join(inputDir, DATA_FILE), req.data)
  const train = {...req.config, data: {...req.config.data, file: DATA_FILE}, trace: {...req.config.trace, capture: null}}
  let config: Record<string, unknown> = {schema: 'repro.replay/1', kind: 'init', train, toggle: req.toggle}
  if (req.kind !== 'init') {
    const capture = await readCapture(req.captureDir!, req.target.name)
    const captureBytes = await readCapped(req.captureDir!, 'capture.safetensors', req.target.name)
    await fs.writeFile(path.join(inputDir, 'capture.safetensors'), captureBytes)
    config = {
      ...config,
      kind: req.kind,
      step: req.step,
      module: req.module,
      capture: {file: 'capture.safetensors', sha256: createHash('sha256').update(captureBytes).digest('hex'), meta: capture.raw},
    }
  }
  await fs.writeFile(path.join(inputDir, 'config.json'), JSON.stringify(config, null, 2))
  const result = await runProbe(req.target, {
    mode: 'replay',
    inputDir,
    outDir: req.outDir,
    timeoutMs: req.timeoutMs,
    env: req.config.knobs.env,
  })
  const {outputs, rng_before, onednn} = await readReplayResult(req.outDir, req.target.name)
  const values = await readStoredValues(req.outDir, req.target.name, 'replay.safetensors')
  return {outputs, values, seconds: result.seconds, ...(rng_before ? {rng_before} : {}), ...(onednn ? {onednn} : {})}
}
