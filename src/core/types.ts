// Domain types shared by compare, attribution and the renderers. Pure data: the artifact
// readers (src/artifacts) parse untrusted files into these; nothing here does I/O.

export type DType = 'float64' | 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'bool'

/** Values of one stored tensor. Floating types arrive widened: F16/BF16 are stored as F32. */
export interface TensorValues {
  dtype: 'float64' | 'float32' | 'int64' | 'int32' | 'uint8' | 'bool'
  shape: number[]
  data: Float64Array | Float32Array | BigInt64Array | Int32Array | Uint8Array
}

export interface TraceEntry {
  name: string
  dtype: DType
  shape: number[]
  sha256: string
  nonfinite: number
}

export type StepId = 'init' | number

export interface TraceStep {
  step: StepId
  epoch: number | null
  stored: boolean
  entries: TraceEntry[]
}

export interface Trace {
  steps: TraceStep[]
  /**
   * 'boundaries': a compiled run, which records no per-layer outputs (its fused program has none)
   * but an eager replay of them (replay/...) at stored steps; absent: every leaf's output
   */
  capture?: 'full' | 'boundaries'
}

/** Lookup of stored values by `<step>|<entry name>`, as in tensors.safetensors. */
export type StoredValues = ReadonlyMap<string, TensorValues>

export function storedKey(step: StepId, name: string): string {
  return `${step}|${name}`
}

export interface Knobs {
  device: string
  threads: number | null
  interop_threads: number | null
  /** 'warn': use_deterministic_algorithms(True, warn_only=True), alerts collected */
  deterministic: boolean | 'warn'
  cudnn_benchmark: boolean
  tf32_matmul: boolean | null
  tf32_cudnn: boolean | null
  float32_matmul_precision: string | null
  amp: 'off' | 'fp16' | 'bf16'
  compile: boolean
  /** data-parallel ranks (1: one process, no DDP) */
  world_size: number
  ddp_backend: 'gloo' | 'nccl' | null
  bucket_cap_mb: number | null
  sync_batchnorm: boolean
  env: Record<string, string>
}

export interface EpochOutcome {
  epoch: number
  train_loss: number | null
  val_loss: number | null
  val_accuracy: number | null
  /** the lstm's outcome (√ of the validation MSE); absent or null for the others */
  val_rmse?: number | null
  seconds: number
  last_step: number
}

/** A warning torch raised for a nondeterministic op (deterministic=warn), deduplicated. */
export interface NondeterministicAlert {
  message: string
  count: number
}

export interface RunOutcome {
  status: 'ok' | 'error'
  error: {type: string; message: string} | null
  /** the built-in workload the run trained (mlp for runs made before workloads); null for a user's script */
  workload: string | null
  /** the final/epochs field that states the outcome */
  outcome_metric: 'val_accuracy' | 'val_rmse' | null
  knobs_effective: Record<string, unknown>
  steps: number
  /** leaf module name → class name (Linear, BatchNorm1d, Embedding, …) */
  module_types: Record<string, string>
  epochs: EpochOutcome[]
  final: {val_accuracy: number | null; val_loss: number | null; train_loss: number | null; val_rmse?: number | null}
  timings: Record<string, number>
  /** with deterministic=warn: the nondeterministic ops torch warned about */
  alerts: NondeterministicAlert[]
  /** the attention workload: 'sdpa' or 'explicit' */
  attention_path: string | null
  /** a compiled run: graphs, graph breaks and the fused kernels (with the modules they cover, inferred) */
  compiled?: CompiledInfo
  /** a user's script: how it ran (argv, cwd, steps, truncation, seeding, the observer check) */
  script?: ScriptRunInfo
  /** a user's script: knobs whose value at the first step differs from what was requested (the script set them) */
  knobs_overridden?: string[]
  /** a user's script: the metrics it reported (report_metric) */
  metrics?: Record<string, number>
  /** world_size > 1: the ranks, and the replica check (rank 0's parameters against every rank's at stored steps and the end) */
  distributed?: DistributedInfo
}

export interface DistributedInfo {
  world_size: number
  backend: 'gloo' | 'nccl'
  replicas: {checked: (number | 'end')[]; drift: {rank: number; step: number | 'end'} | null}
}

export interface ScriptRunInfo {
  path?: string | null
  argv?: string[]
  cwd?: string | null
  env?: Record<string, string>
  steps_recorded?: number | null
  truncated?: boolean | null
  end?: string | null
  kind?: 'script' | 'module' | 'notebook'
  module?: string | null
  /** what one trace step is: an optimizer step, or (no torch.optim optimizer) one top-level backward */
  step_definition?: 'optimizer step' | 'backward' | null
  /** optimizer.step(closure): how often the closures ran (the first evaluation of each step is recorded) */
  closures?: {evaluations: number; entries_skipped?: number} | null
  notebook?: {
    cells: number
    cells_run: number
    ipython: boolean
    allow_errors?: boolean
    skipped_magics: {cell: number; line: number; magic: string}[]
    errors: {cell: number; first_line: string; error: string}[]
  } | null
  seeded?: unknown
  eval_forwards?: unknown
  observer_check?: {equal?: boolean | null; params?: number | null; differing?: string[]; untraced_error?: string | null} | null
}

export interface CompiledInfo {
  graphs: number | null
  graph_breaks: number | null
  regions: {kernel: string; pass: string; ops: string[]; modules: string[]}[]
}

/** The fingerprint is a nested JSON object (docs/artifacts.md); diffed generically by path. */
export type Json = null | boolean | number | string | Json[] | {[key: string]: Json}
export type Fingerprint = {[key: string]: Json}

/** One complete run read back from disk (validated). */
export interface RunArtifacts {
  label: string
  fingerprint: Fingerprint
  outcome: RunOutcome
  trace: Trace
  values: StoredValues
}

/** Tolerances for numeric comparison (torch.testing.assert_close semantics). */
export interface Tolerance {
  rtol: number
  atol: number
}

export const DEFAULT_FP32_TOLERANCE: Tolerance = {rtol: 1.3e-6, atol: 1e-5}
export const DEFAULT_FP64_TOLERANCE: Tolerance = {rtol: 1e-7, atol: 1e-7}
