// Resolves the training data for a run: the seeded synthetic default, or a user CSV.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {CsvError, tabularFromCsv} from '../core/csv.js'
import {DEFAULT_SYNTHETIC, generateSynthetic, type TabularData} from '../core/data.js'
import {generateWorkloadData, type WorkloadData, type WorkloadName} from '../core/workloads.js'
import {ReproError} from '../errors.js'

const CSV_CAP = 256 * 1024 * 1024

export interface DataOptions {
  csv?: string
  label?: string
  rows?: number
  dataSeed?: number
}

export async function resolveData(opts: DataOptions): Promise<TabularData> {
  if (!opts.csv) {
    return generateSynthetic({
      ...DEFAULT_SYNTHETIC,
      rows: opts.rows ?? DEFAULT_SYNTHETIC.rows,
      seed: opts.dataSeed ?? DEFAULT_SYNTHETIC.seed,
    })
  }
  if (!opts.label)
    throw new ReproError('--data needs --label COLUMN', {subject: opts.csv, hint: 'name the column to predict, e.g. --label target'})
  const stat = await fs.stat(opts.csv).catch(() => null)
  if (!stat?.isFile())
    throw new ReproError(`${opts.csv} does not exist or is not a file`, {
      subject: opts.csv,
      hint: 'pass the path of a CSV file with a header row',
    })
  if (stat.size > CSV_CAP)
    throw new ReproError(`${opts.csv} is ${stat.size} bytes, over the ${CSV_CAP}-byte cap`, {
      subject: opts.csv,
      hint: 'sample the rows down; the audit needs a small tabular set',
    })
  try {
    return tabularFromCsv(await fs.readFile(opts.csv, 'utf8'), opts.label, path.basename(opts.csv))
  } catch (e) {
    if (e instanceof CsvError)
      throw new ReproError(`cannot use ${opts.csv}: ${e.message}`, {
        subject: opts.csv,
        hint: 'fix the CSV (header row, same field count per row) or pick another --label',
      })
    throw e
  }
}

/**
 * Each workload's data: the mlp's from a user CSV or the seeded generator, the others from
 * theirs. `rows`, when given, sizes every generated set (else each workload's default).
 */
export async function resolveWorkloadData(
  workloads: WorkloadName[],
  opts: DataOptions,
): Promise<Partial<Record<WorkloadName, WorkloadData>>> {
  const out: Partial<Record<WorkloadName, WorkloadData>> = {}
  for (const w of workloads) {
    out[w] = w === 'mlp' ? await resolveData(opts) : generateWorkloadData(w, {rows: opts.rows, seed: opts.dataSeed})
  }
  return out
}
