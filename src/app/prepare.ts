// `repro prepare`: the probe's inputs for a matrix of variants × workloads × repeats, written
// without running anything — for a machine where repro itself does not run (a GPU box with
// python and torch only). Each run directory gets inputs/config.json (the data file shared per
// workload, named by its sha256 in the config); manifest.json lists the runs and run.sh runs
// them one by one with `python3 -m repro_probe train`. Bring the run directories back and
// compare them here with `repro compare`.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {defaultProbeConfig} from '../core/config.js'
import {DEFAULT_KNOBS, KnobError, knobsForTarget, parseKnobOverride} from '../core/knobs.js'
import type {Knobs} from '../core/types.js'
import type {WorkloadName} from '../core/workloads.js'
import {encodeWorkloadData} from '../artifacts/inputs.js'
import {ReproError} from '../errors.js'
import {type DataOptions, resolveWorkloadData} from './data.js'
import {ensureOutDir} from './out-dir.js'

export interface Variant {
  name: string
  /** knob settings in --set syntax (key=value, env.NAME=value) */
  set: string[]
}

export interface PrepareRequest {
  variants: Variant[]
  workloads: WorkloadName[]
  repeats: number
  seed: number
  epochs: number
  storeSteps: number[] | null
  data: DataOptions
  outDir: string
}

export interface PreparedRun {
  dir: string
  variant: string
  workload: WorkloadName
  repeat: number
  knobs: Knobs
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/

/** Variants from a JSON file: [{"name": "tf32", "set": ["device=cuda", "tf32_matmul=true"]}, …]. */
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
  return raw.map((v, i) => {
    const ok =
      v &&
      typeof v === 'object' &&
      typeof v.name === 'string' &&
      NAME.test(v.name) &&
      Array.isArray(v.set) &&
      v.set.every((s: unknown) => typeof s === 'string')
    if (!ok)
      throw new ReproError(`variant ${i + 1} is not {"name": "<letters, digits, - or _>", "set": ["key=value", …]}`, {
        subject,
        hint: 'fix that variant',
      })
    return {name: v.name, set: v.set}
  })
}

function knobsOf(variant: Variant): Knobs {
  try {
    return knobsForTarget({...DEFAULT_KNOBS, env: {}}, variant.set.map(parseKnobOverride), 1)
  } catch (e) {
    if (e instanceof KnobError)
      throw new ReproError(`variant ${variant.name}: ${e.message}`, {
        subject: 'prepare',
        hint: 'write its settings as --set takes them, e.g. tf32_matmul=true',
      })
    throw e
  }
}

export async function prepareRuns(req: PrepareRequest): Promise<{dir: string; runs: PreparedRun[]}> {
  const outDir = path.resolve(req.outDir)
  await ensureOutDir(outDir)
  const data = await resolveWorkloadData(req.workloads, req.data)
  const files = new Map<WorkloadName, {file: string; sha256: string}>()
  await fs.mkdir(path.join(outDir, 'data'), {recursive: true})
  for (const w of req.workloads) {
    const encoded = encodeWorkloadData(data[w]!)
    await fs.writeFile(path.join(outDir, 'data', `${w}.safetensors`), encoded.bytes)
    files.set(w, {file: `${w}.safetensors`, sha256: encoded.sha256})
  }
  const runs: PreparedRun[] = []
  for (const variant of req.variants) {
    const knobs = knobsOf(variant)
    for (const w of req.workloads) {
      for (let r = 1; r <= req.repeats; r++) {
        const dir = path.join(variant.name, `${w}-r${r}`)
        const inputs = path.join(outDir, dir, 'inputs')
        await fs.mkdir(inputs, {recursive: true})
        // the data file is shared: the config names it relative to its own directory
        const config = {
          ...defaultProbeConfig({file: path.join('..', '..', '..', 'data', files.get(w)!.file), sha256: files.get(w)!.sha256}, req.seed, w),
          knobs,
        }
        config.train.epochs = req.epochs
        config.trace.store_steps = req.storeSteps
        await fs.writeFile(path.join(inputs, 'config.json'), JSON.stringify(config, null, 2))
        runs.push({dir, variant: variant.name, workload: w, repeat: r, knobs})
      }
    }
  }
  await fs.writeFile(path.join(outDir, 'manifest.json'), JSON.stringify({schema: 'repro.prepared/1', runs}, null, 2))
  await fs.writeFile(path.join(outDir, 'run.sh'), runScript(runs), {mode: 0o755})
  return {dir: outDir, runs}
}

/** A POSIX script that runs every prepared run with the python given as $1 (default python3). */
function runScript(runs: PreparedRun[]): string {
  const lines = [
    '#!/bin/sh',
    '# Runs every prepared probe run, one after the other (written by repro prepare).',
    "# Usage: sh run.sh [PYTHON]   (PYTHONPATH must reach repro_probe, e.g. the repo's probe/ folder)",
    'cd "$(dirname "$0")"',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
    'PY="${1:-python3}"',
  ]
  for (const r of runs) {
    const env = Object.entries(r.knobs.env)
      .map(([k, v]) => `${k}='${v.replace(/'/g, "'\\''")}' `)
      .join('')
    lines.push(`${env}"$PY" -m repro_probe train --config '${r.dir}/inputs/config.json' --out '${r.dir}' || echo "failed: ${r.dir}" >&2`)
  }
  return `${lines.join('\n')}\n`
}
