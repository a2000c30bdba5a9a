// The probe config (docs/artifacts.md, config.json) and the runtime-knob overrides a user can
// set per target with `--set [N:]key=value`.

import type {Knobs} from './types.js'
import type {WorkloadName} from './workloads.js'

export interface ProbeConfig {
  schema: 'repro.config/1'
  workload: WorkloadName
  data: {file: string; sha256: string}
  model: {hidden: number[]; embedding_dim: number; dropout: number}
  train: {epochs: number; batch_size: number; lr: number; optimizer: 'adam' | 'sgd'; seed: number; val_fraction: number}
  knobs: Knobs
  trace: {enabled: boolean; store_steps: number[] | null}
}

export const DEFAULT_KNOBS: Knobs = {
  device: 'cpu',
  threads: null,
  interop_threads: null,
  deterministic: false,
  cudnn_benchmark: false,
  tf32_matmul: null,
  tf32_cudnn: null,
  float32_matmul_precision: null,
  amp: 'off',
  compile: false,
  env: {},
}

export function defaultProbeConfig(data: {file: string; sha256: string}, seed = 1234, workload: WorkloadName = 'mlp'): ProbeConfig {
  return {
    schema: 'repro.config/1',
    workload,
    data,
    model: {hidden: [64, 32], embedding_dim: 4, dropout: 0.1},
    train: {epochs: 3, batch_size: 64, lr: 0.005, optimizer: 'adam', seed, val_fraction: 0.2},
    knobs: {...DEFAULT_KNOBS, env: {}},
    trace: {enabled: true, store_steps: null},
  }
}

export class KnobError extends Error {
  override name = 'KnobError'
}

/** A parsed `--set` flag: which target (1-based, or every target) and which knob. */
export interface KnobOverride {
  target: number | null
  apply: (knobs: Knobs) => Knobs
  text: string
}

const BOOL: Record<string, boolean> = {true: true, on: true, '1': true, yes: true, false: false, off: false, '0': false, no: false}

function parseBool(key: string, v: string): boolean {
  const b = BOOL[v.toLowerCase()]
  if (b === undefined) throw new KnobError(`${key} takes true or false, not ${JSON.stringify(v)}`)
  return b
}

function parseThreads(key: string, v: string): number | null {
  if (v === 'default') return null
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1024)
    throw new KnobError(`${key} takes a count from 1 to 1024 or "default", not ${JSON.stringify(v)}`)
  return Number(v)
}

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/

export const KNOB_NAMES = [
  'threads',
  'interop_threads',
  'deterministic',
  'cudnn_benchmark',
  'tf32_matmul',
  'tf32_cudnn',
  'float32_matmul_precision',
  'amp',
  'compile',
  'device',
  'env.NAME',
] as const

/** Parse `[N:]key=value`, e.g. `2:threads=2`, `deterministic=true`, `1:env.OMP_NUM_THREADS=1`. */
export function parseKnobOverride(text: string): KnobOverride {
  const m = /^(?:(\d+):)?([A-Za-z_][A-Za-z0-9_.]*)=(.*)$/.exec(text)
  if (!m) throw new KnobError(`--set ${JSON.stringify(text)} is not [N:]key=value (for example 2:threads=2)`)
  const target = m[1] === undefined ? null : Number(m[1])
  if (target !== null && target < 1) throw new KnobError(`--set ${text}: targets are numbered from 1`)
  const key = m[2]!
  const value = m[3]!
  const set =
    (patch: Partial<Knobs>) =>
    (k: Knobs): Knobs => ({...k, ...patch, env: {...k.env, ...(patch.env ?? {})}})
  let apply: (k: Knobs) => Knobs
  switch (key) {
    case 'threads':
    case 'interop_threads':
      apply = set({[key]: parseThreads(key, value)})
      break
    case 'deterministic':
    case 'cudnn_benchmark':
    case 'compile':
      apply = set({[key]: parseBool(key, value)})
      break
    case 'tf32_matmul':
    case 'tf32_cudnn':
      apply = set({[key]: value === 'default' ? null : parseBool(key, value)})
      break
    case 'float32_matmul_precision':
      if (!['highest', 'high', 'medium', 'default'].includes(value))
        throw new KnobError(`float32_matmul_precision takes highest, high, medium or default, not ${JSON.stringify(value)}`)
      apply = set({float32_matmul_precision: value === 'default' ? null : value})
      break
    case 'amp':
      if (value !== 'off' && value !== 'fp16' && value !== 'bf16')
        throw new KnobError(`amp takes off, fp16 or bf16, not ${JSON.stringify(value)}`)
      apply = set({amp: value})
      break
    case 'device':
      if (!/^(cpu|cuda(:\d+)?)$/.test(value)) throw new KnobError(`device takes cpu, cuda or cuda:N, not ${JSON.stringify(value)}`)
      apply = set({device: value})
      break
    default: {
      const env = /^env\.(.+)$/.exec(key)
      if (!env || !ENV_NAME.test(env[1]!)) {
        throw new KnobError(`unknown knob ${JSON.stringify(key)}; knobs: ${KNOB_NAMES.join(', ')}`)
      }
      if (/[\n\r\0]/.test(value)) throw new KnobError(`env.${env[1]} must be a single line`)
      apply = set({env: {[env[1]!]: value}})
    }
  }
  return {target, apply, text}
}

/** Knobs for target `index` (1-based) after every override that applies to it, in order. */
export function knobsForTarget(base: Knobs, overrides: KnobOverride[], index: number): Knobs {
  return overrides.filter((o) => o.target === null || o.target === index).reduce((k, o) => o.apply(k), base)
}
