// What `repro audit` does once its flags are parsed: resolve the targets (or the embedded
// default), the data and the output directory, run the audit, write the report files and,
// inside GitHub Actions, publish the step summary and annotations.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {defaultProbeConfig, distributedProblem} from '../core/config.js'
import type {AuditReport} from '../core/report.js'
import type {WorkloadName} from '../core/workloads.js'
import {isGitHubActions, publishToGitHub} from '../report/github.js'
import {runAudit} from './audit.js'
import {RunCache} from './cache.js'
import {type DataOptions, resolveWorkloadData} from './data.js'
import {stderrProgress} from './progress.js'
import {parseFormats, writeReportFiles} from './report-files.js'
import {resolveScriptSpec, type ScriptRequest} from './script-inputs.js'
import {ReproError} from '../errors.js'
import {defaultDemoTargets, findPythonWithTorch, slurmOptions, type TargetRef, type TargetSettings, targetsFromRefs} from './targets.js'

export interface AuditRequest {
  /** targets in command-line order; none → the embedded default (the host's python vs itself) */
  refs: TargetRef[]
  settings: TargetSettings
  data: DataOptions
  workloads: WorkloadName[]
  /** the user's training script (or module, or notebook) instead of the workloads */
  script?: ScriptRequest
  repeats: number
  seed: number
  seeds: number
  epochs: number
  storeSteps: number[] | null
  explainBudget: number
  jobs: number
  cache: boolean
  timeoutSeconds: number
  outDir: string
  /** --resume: take the complete runs --out already holds (made from the same inputs) */
  resume?: boolean
  formats: string
  command: string
  /** progress on stderr (a TTY and no --json) */
  progress: boolean
  /** --json owns stdout: GitHub annotations then go to stderr */
  jsonStdout: boolean
}

export async function auditRequest(req: AuditRequest): Promise<AuditReport> {
  const formats = parseFormats(req.formats, 'audit')
  // a mistake in the script's flags is reported before any target is looked at
  const script = req.script ? await resolveScriptSpec(req.script) : undefined
  const slurm = slurmOptions(req.settings)
  if (slurm && req.refs.length === 0)
    throw new ReproError('--executor slurm needs targets: the embedded default derives its variant from a first local run', {
      subject: 'audit',
      hint: 'name the interpreters the nodes have, e.g. --python /usr/bin/python3 --python /usr/bin/python3',
    })
  // the run cache keys on this host; a cluster's nodes are not this host
  const cache = req.cache && !slurm ? new RunCache() : null
  const targets =
    req.refs.length > 0
      ? await targetsFromRefs(req.refs, req.settings, cache?.targetMemoDirs())
      : defaultDemoTargets(await findPythonWithTorch(), cache?.targetMemoDirs())
  checkDistributed(targets, Boolean(script))
  const outDir = path.resolve(req.outDir)
  const report = await runAudit({
    targets,
    repeats: req.repeats,
    seed: req.seed,
    seeds: req.seeds,
    explainBudget: req.explainBudget,
    storeSteps: req.storeSteps,
    jobs: req.jobs,
    cache,
    epochs: req.epochs,
    workloads: script ? ['script'] : req.workloads,
    ...(script ? {script} : {}),
    data: script ? {} : await resolveWorkloadData(req.workloads, req.data),
    timeoutMs: req.timeoutSeconds * 1000,
    outDir,
    ...(req.resume ? {resume: true} : {}),
    command: req.command,
    progress: stderrProgress(req.progress),
  })
  await writeReportFiles(report, outDir, formats)
  if (isGitHubActions(process.env)) {
    // Annotations are workflow commands on stdout, unless --json owns stdout.
    const io = req.jsonStdout
      ? {appendFile: (f: string, t: string) => fs.appendFile(f, t), writeLine: (l: string) => process.stderr.write(`${l}\n`)}
      : undefined
    await publishToGitHub(report, process.env, io)
  }
  return report
}

/** A world size the workloads' batch cannot be split by, or one asked of a script: a usage error naming the target. */
export function checkDistributed(targets: {target: {name: string}; knobs: import('../core/types.js').Knobs}[], script: boolean): void {
  const batch = defaultProbeConfig({file: '', sha256: ''}).train.batch_size
  for (const [i, t] of targets.entries()) {
    const subject = `#${i + 1} ${t.target.name}`
    if (script && t.knobs.world_size > 1)
      throw new ReproError(`world_size ${t.knobs.world_size} applies to the built-in workloads`, {
        subject,
        hint: "a script's ranks are --script-nproc N (torchrun starts them); audit it at world_size 1",
      })
    const problem = distributedProblem(t.knobs, batch)
    if (problem) throw new ReproError(problem, {subject, hint: 'change --set world_size (or compile)'})
  }
}
