// `repro compare`: saved run directories compared offline, the first against each other.
// A directory that cannot be read is reported as a failed target; the others still compare.

import path from 'node:path'
import {DEFAULT_KNOBS} from '../core/knobs.js'
import {compareAll} from '../core/pairs.js'
import {decideVerdict, REPORT_SCHEMA, type AuditReport, type TargetRecord} from '../core/report.js'
import type {RunArtifacts} from '../core/types.js'
import {isReproError, ReproError} from '../errors.js'
import {readRunSource, runSources} from './prepared-runs.js'
import {toolVersion} from './version.js'

export async function compareRunDirs(args: string[], command: string): Promise<AuditReport> {
  const sources = await runSources(args)
  if (sources.length < 2)
    throw new ReproError(`compare needs at least two run directories, got ${sources.length}`, {
      subject: 'compare',
      hint: 'pass two or more directories written by `repro run` (or a folder repro prepare wrote, once its run.sh ran)',
    })
  const dirs = sources.map((s) => s.dir)
  const targets: TargetRecord[] = []
  const loaded = new Map<number, RunArtifacts>()
  for (const [i, src] of sources.entries()) {
    const index = i + 1
    const dir = src.dir
    const name = `#${index} ${src.label}${src.target ? ` (${src.target})` : ''}`
    const rec: TargetRecord = {
      index,
      name,
      kind: 'run-dir',
      role: 'target',
      knobs_requested: {...DEFAULT_KNOBS, env: {}},
      identity: {reference: path.resolve(dir), details: src.target ? {prepared_target: src.target} : {}},
      status: 'ok',
      error: null,
      runs: [],
    }
    targets.push(rec)
    try {
      const a = await readRunSource(src, name)
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
