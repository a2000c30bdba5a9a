// Writes the probe's inputs (config.json, data.safetensors) into a directory the target reads.

import {createHash} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {ProbeConfig} from '../core/config.js'
import type {TabularData} from '../core/data.js'
import {writeSafetensors} from './safetensors.js'

export const DATA_FILE = 'data.safetensors'
export const CONFIG_FILE = 'config.json'

export function encodeData(data: TabularData): {bytes: Buffer; sha256: string} {
  const bytes = writeSafetensors(
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
  return {bytes, sha256: createHash('sha256').update(bytes).digest('hex')}
}

/** Write config.json and data.safetensors (train mode) into `dir`. */
export async function writeProbeInputs(dir: string, config: ProbeConfig, data: Buffer | null): Promise<void> {
  await fs.mkdir(dir, {recursive: true})
  await fs.writeFile(path.join(dir, CONFIG_FILE), JSON.stringify(config, null, 2))
  if (data) await fs.writeFile(path.join(dir, DATA_FILE), data)
}
