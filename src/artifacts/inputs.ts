// Writes the probe's inputs (config.json, data.safetensors) into a directory the target reads,
// and encodes each workload's data as safetensors (tensor names and metadata: docs/artifacts.md).

import {createHash} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {ProbeConfig} from '../core/config.js'
import type {TabularData} from '../core/data.js'
import type {ImageData, SeriesData, TokenData} from '../core/workload-data.js'
import type {WorkloadData} from '../core/workloads.js'
import {type TensorToWrite, writeSafetensors} from './safetensors.js'

export const DATA_FILE = 'data.safetensors'
export const CONFIG_FILE = 'config.json'

export interface EncodedData {
  bytes: Buffer
  sha256: string
}

function encoded(tensors: Record<string, TensorToWrite>, metadata: Record<string, string>): EncodedData {
  const bytes = writeSafetensors(tensors, metadata)
  return {bytes, sha256: createHash('sha256').update(bytes).digest('hex')}
}

export function encodeData(data: TabularData): EncodedData {
  return encoded(
    {
      numeric: {dtype: 'F32', shape: [data.rows, data.numericColumns.length], data: data.numeric},
      categorical: {dtype: 'I64', shape: [data.rows, data.categoricalColumns.length], data: data.categorical},
      label: {dtype: 'I64', shape: [data.rows], data: data.label},
    },
    {
      numeric_columns: JSON.stringify(data.numericColumns),
      categorical_columns: JSON.stringify(data.categoricalColumns),
      classes: String(data.classes),
      label_column: data.labelColumn,
      source: data.source,
      generator: 'repro/src/core/data.ts',
    },
  )
}

const GENERATOR = 'repro/src/core/workload-data.ts'

export function encodeImageData(data: ImageData): EncodedData {
  return encoded(
    {
      images: {dtype: 'U8', shape: [data.rows, data.channels, data.height, data.width], data: data.images},
      label: {dtype: 'I64', shape: [data.rows], data: data.label},
    },
    {workload: data.workload, classes: String(data.classes), source: data.source, generator: GENERATOR},
  )
}

export function encodeSeriesData(data: SeriesData): EncodedData {
  return encoded(
    {
      windows: {dtype: 'F32', shape: [data.rows, data.window, data.features], data: data.windows},
      target: {dtype: 'F32', shape: [data.rows], data: data.target},
    },
    {workload: data.workload, window: String(data.window), source: data.source, generator: GENERATOR},
  )
}

export function encodeTokenData(data: TokenData): EncodedData {
  return encoded(
    {
      tokens: {dtype: 'I64', shape: [data.rows, data.seqLen], data: data.tokens},
      label: {dtype: 'I64', shape: [data.rows], data: data.label},
    },
    {workload: data.workload, vocab: String(data.vocab), classes: String(data.classes), source: data.source, generator: GENERATOR},
  )
}

/** Any workload's data (tabular data carries no `workload` tag: it is the mlp's, synthetic or CSV). */
export function encodeWorkloadData(data: WorkloadData): EncodedData {
  if (!('workload' in data)) return encodeData(data)
  switch (data.workload) {
    case 'cnn':
      return encodeImageData(data)
    case 'lstm':
      return encodeSeriesData(data)
    case 'attention':
      return encodeTokenData(data)
  }
}

/** Write config.json and data.safetensors (train mode) into `dir`. */
export async function writeProbeInputs(dir: string, config: ProbeConfig, data: Buffer | null): Promise<void> {
  await fs.mkdir(dir, {recursive: true})
  await fs.writeFile(path.join(dir, CONFIG_FILE), JSON.stringify(config, null, 2))
  if (data) await fs.writeFile(path.join(dir, DATA_FILE), data)
}
