// `repro compare`: saved run directories compared offline, the first against each other.
// A directory that cannot be read is reported as a failed target; the others still compare.

import path from 'node:path'
import {DEFAULT_KNOBS} from '../core/knobs.js'
import {compareAll} from '../core/pairs.js'
import {decideVerdict, REPORT_SCHEMA, type AuditReport, type TargetRecord} from '../core/report.js'
import type {RunArtifacts} from '../core/types.js'
import {readRunDir} from '../artifacts/run-dir.js'
import {isReproError} from '../errors.js'
import {toolVersion} from './version.js'

export async function compareRunDirs(dirs: string[], command: string): Promise<AuditReport> {
  const targets: TargetRecord[] = []
  const loaded = new Map<number, RunArtifacts>()
  for (const [i, dir] of dirs.entries()) {
    const index = i + 1
    const name = `#${index} ${dir}`
    const rec: TargetRecord = {
      index,
      name,
      kind: 'run-dir',
      role: 'target',
      knobs_requested: {...DEFAULT_KNOBS, env: {}},
      identity: {reference: path.resolve(dir), details: {}},
      status: 'ok',
      error: null,
      runs: [],
    }
    targets.push(rec)
    try {
      const a = await readRunDir(dir, name)
      loaded.set(index, a)
      rec.runs.push({
        repeat: 1,
        dir: path.resolve(dir),
        seconds: a.outcome.timings['total_seconds'] ?? 0,
        final: a.outcome.final,
        epochs: a.outcome.epochs,
        knobs_effective: a.outcome.knobs_effective,
        timings: a.outcome.timings,
        ...(a.outcome.script ? {script: a.outcome.script} : {}),
        ...(a.outcome.distributed ? {distributed: a.outcome.distributed} : {}),
      })
    } catch (e) {
      if (!isReproError(e)) throw e
      rec.status = 'error'
      rec.error = {message: e.message, hint: e.hint, line: e.oneLine()}
    }
  }
  const comparisons = compareAll(targets, new Map([...loaded].map(([index, run]) => [index, [run]]))).records
  return {
    schema: REPORT_SCHEMA,
    tool: {name: 'repro', version: toolVersion()},
    created: new Date().toISOString(),
    command,
    host: null,
    git: null,
    settings: {
      repeats: 1,
      seed: 0,
      epochs: 0,
      data_source: 'saved runs',
      data_sha256: '',
      out_dir: dirs.map((d) => path.resolve(d)).join(', '),
    },
    targets,
    comparisons,
    verdict: decideVerdict(targets, comparisons),
  }
}
