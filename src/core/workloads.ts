// The canary suite as one table: each workload the probe can train (probe/repro_probe/workloads/),
// what it exercises, how its outcome is judged, and the data the host generates for it. The
// `--workload` flag, its docs and the data generation derive from this table.

import {DEFAULT_SYNTHETIC, generateSynthetic, type SyntheticSpec, type TabularData} from './data.js'
import {
  generateImages,
  generateSeries,
  generateTokens,
  type ImageData,
  type ImageSpec,
  type SeriesData,
  type SeriesSpec,
  type TokenData,
  type TokenSpec,
} from './workload-data.js'

export type OutcomeMetric = 'val_accuracy' | 'val_rmse'

export type WorkloadDataSpec =
  | {kind: 'tabular'; spec: SyntheticSpec}
  | {kind: 'images'; spec: ImageSpec}
  | {kind: 'series'; spec: SeriesSpec}
  | {kind: 'tokens'; spec: TokenSpec}

export type WorkloadData = TabularData | ImageData | SeriesData | TokenData

export interface WorkloadInfo {
  summary: string
  /** the torch layers (and ops) the workload runs, in forward order */
  layers: readonly string[]
  /** the run.json field that states the outcome */
  outcomeMetric: OutcomeMetric
  higherIsBetter: boolean
  /** the default data: spec of the seeded generator */
  data: WorkloadDataSpec
}

export const WORKLOADS = {
  mlp: {
    summary: 'tabular MLP: embeddings, Linear, BatchNorm1d, ReLU, Dropout, cross-entropy',
    layers: ['Embedding', 'Linear', 'BatchNorm1d', 'ReLU', 'Dropout'],
    outcomeMetric: 'val_accuracy',
    higherIsBetter: true,
    data: {kind: 'tabular', spec: DEFAULT_SYNTHETIC},
  },
  cnn: {
    summary: 'tiny ResNet on 3×32×32 images: convolutions (oneDNN / cuDNN algorithm choice), BatchNorm2d, pooling',
    layers: ['Conv2d', 'BatchNorm2d', 'ReLU', 'MaxPool2d', 'residual add', 'AdaptiveAvgPool2d', 'Flatten', 'Linear'],
    outcomeMetric: 'val_accuracy',
    higherIsBetter: true,
    data: {kind: 'images', spec: {seed: 20260102, rows: 768, classes: 10, size: 32, noise: 0.15}},
  },
  lstm: {
    summary: '2-layer LSTM forecaster with dropout between layers on a seasonal series (recurrent kernels, cuDNN RNN)',
    layers: ['LSTM', 'Dropout (between LSTM layers)', 'Linear'],
    outcomeMetric: 'val_rmse',
    higherIsBetter: false,
    data: {kind: 'series', spec: {seed: 20260103, rows: 1024, window: 16, periods: [12, 50], amplitudes: [1, 0.5], noise: 0.2}},
  },
  attention: {
    summary:
      'transformer encoder block on token sequences: scaled_dot_product_attention (or the explicit softmax), LayerNorm, GELU, EmbeddingBag',
    layers: ['Embedding', 'LayerNorm', 'Linear', 'scaled_dot_product_attention', 'GELU', 'EmbeddingBag'],
    outcomeMetric: 'val_accuracy',
    higherIsBetter: true,
    data: {kind: 'tokens', spec: {seed: 20260104, rows: 1024, seqLen: 16, vocab: 64, classes: 4}},
  },
} as const satisfies Record<string, WorkloadInfo>

export type WorkloadName = keyof typeof WORKLOADS

export const WORKLOAD_NAMES = Object.keys(WORKLOADS) as WorkloadName[]

export const DEFAULT_WORKLOAD: WorkloadName = 'mlp'

export function isWorkloadName(name: string): name is WorkloadName {
  return Object.hasOwn(WORKLOADS, name)
}

/** The workload's default data, with the seed and row count replaced where given. */
export function generateWorkloadData(
  name: WorkloadName,
  overrides: {seed?: number | undefined; rows?: number | undefined} = {},
): WorkloadData {
  const data: WorkloadDataSpec = WORKLOADS[name].data
  const seed = overrides.seed ?? data.spec.seed
  const rows = overrides.rows ?? data.spec.rows
  switch (data.kind) {
    case 'tabular':
      return generateSynthetic({...data.spec, seed, rows})
    case 'images':
      return generateImages({...data.spec, seed, rows})
    case 'series':
      return generateSeries({...data.spec, seed, rows})
    case 'tokens':
      return generateTokens({...data.spec, seed, rows})
  }
}

/** Workload names in the order given, `all` expanded, each once (unknown names are the caller's to reject). */
export function expandWorkloads(values: readonly string[]): WorkloadName[] {
  const out: WorkloadName[] = []
  for (const v of values) for (const w of v === 'all' ? WORKLOAD_NAMES : isWorkloadName(v) ? [v] : []) if (!out.includes(w)) out.push(w)
  return out
}
