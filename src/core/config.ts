// The probe config (docs/artifacts.md, config.json): what the host hands the probe. Its knob
// part comes from the knob table (knobs.ts); schemas/probe-config.schema.json is generated
// from probeConfigSchema (src/artifacts/schemas.ts) and checked by the probe's tests too.

import {DEFAULT_KNOBS} from './knobs.js'
import type {Knobs} from './types.js'
import type {WorkloadName} from './workloads.js'

export const PROBE_CONFIG_SCHEMA = 'repro.config/1'

/**
 * trace.capture (op replay): {step, module} one module's forward inputs; with backward true also its
 * grad_output; {step, backward: 'order'} every leaf module's grad_output / grad_input digests in
 * backward firing order.
 */
/** trace.replay (script mode): run the script up to that module's call at that step and replace it by one call on the capture. */
export interface ScriptReplaySpec {
  step: number
  module: string
  capture: {file: string; sha256: string; meta: Record<string, unknown>}
  toggle: {mkldnn: boolean} | null
}

export type CaptureSpec = {step: number; module: string; backward?: boolean} | {step: number; backward: 'order'}

export interface ProbeConfig {
  schema: typeof PROBE_CONFIG_SCHEMA
  workload: WorkloadName
  data: {file: string; sha256: string}
  model: {hidden: number[]; embedding_dim: number; dropout: number}
  train: {
    epochs: number
    batch_size: number
    lr: number
    optimizer: 'adam' | 'sgd'
    seed: number
    val_fraction: number
    /** drop every epoch's trailing partial batch: set for all targets of an audit where one trains data-parallel */
    drop_last?: boolean
    /** seconds a data-parallel rank waits in a collective (the run's timeout) */
    collective_timeout?: number
  }
  knobs: Knobs
  /** capture: record one module's inputs at one step, then stop (op replay; absent: none) */
  trace: {enabled: boolean; store_steps: number[] | null; capture?: CaptureSpec | null; replay?: ScriptReplaySpec | null}
  /**
   * script mode: the user's project, copied under `root`; every path relative to the config's
   * directory. `path` is null for a module (`module` names it); `include` is always empty now
   * (extra sys.path folders, kept for compatibility).
   */
  script?: {
    kind: 'script' | 'module' | 'notebook'
    path: string | null
    module: string | null
    root: string
    args: string[]
    cwd: string
    include: string[]
    max_steps: number
    /** ranks torchrun starts (1: the script runs in one process) */
    nproc: number
    observer: boolean
    allow_errors: boolean
    sha256: string
  }
}

export function defaultProbeConfig(data: {file: string; sha256: string}, seed = 1234, workload: WorkloadName = 'mlp'): ProbeConfig {
  return {
    schema: PROBE_CONFIG_SCHEMA,
    workload,
    data,
    model: {hidden: [64, 32], embedding_dim: 4, dropout: 0.1},
    train: {epochs: 3, batch_size: 64, lr: 0.005, optimizer: 'adam', seed, val_fraction: 0.2},
    knobs: {...DEFAULT_KNOBS, env: {}},
    trace: {enabled: true, store_steps: null},
  }
}

/**
 * Why these knobs cannot train the built-in workloads' batches, or null: a world size must split
 * the batch into equal slices, and torch.compile is not audited under DistributedDataParallel.
 */
export function distributedProblem(knobs: Knobs, batchSize: number): string | null {
  if (knobs.world_size <= 1) return null
  if (batchSize % knobs.world_size)
    return `world_size ${knobs.world_size} does not split the batch of ${batchSize} rows into equal slices; use a world size that divides ${batchSize} (1, 2, 4, 8 or 16)`
  if (knobs.compile)
    return `compile=true with world_size ${knobs.world_size}: torch.compile under DistributedDataParallel is not audited; drop one of them`
  return null
}
