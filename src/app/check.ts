// `repro check`: run the ML repo's configured audit and hold it against a baseline report —
// a file, or the version of that file at a git ref (`git show <ref>:<path>` via simple-git) —
// and the repo's policy. Stamps commit, branch, merge-base and dirty state.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {baselineUpdated, type CheckReport, checkResult} from '../core/check.js'
import {evaluatePolicy} from '../core/policy.js'
import {expandWorkloads} from '../core/workloads.js'
import type {AuditReport} from '../core/report.js'
import {GitShowError, gitState, mergeBase, showAtRef} from '../env/git.js'
import {timed, timedSync} from '../env/timings.js'
import {ReproError} from '../errors.js'
import {renderCheckMarkdown} from '../report/check-markdown.js'
import {escapeWorkflowData, escapeWorkflowProperty} from '../report/escape.js'
import {isGitHubActions} from '../report/github.js'
import {renderJson} from '../report/json.js'
import {parseReport} from '../report/load.js'
import {runAudit} from './audit.js'
import {RunCache} from './cache.js'
import {type LoadedConfig, loadCheckConfig} from './check-config.js'
import {resolveWorkloadData} from './data.js'
import {resolveScriptSpec} from './script-inputs.js'
import {type Progress, stderrProgress} from './progress.js'
import {ALL_FORMATS, writeReportFiles} from './report-files.js'
import {targetsFromRefs} from './targets.js'

export type {CheckReport} from '../core/check.js'

export interface CheckOptions {
  loaded: LoadedConfig
  baselineFile?: string
  baselineRef?: string
  updateBaseline: boolean
  outDir: string
  cache: RunCache | null
  jobs: number
  progress: Progress
  command: string
}

/** The baseline report text at a git ref, for a path given relative to the config's directory. */
async function baselineFromGit(dir: string, ref: string, file: string): Promise<string> {
  try {
    return (await showAtRef(dir, ref, file)).text
  } catch (e) {
    if (!(e instanceof GitShowError)) throw e
    const hint =
      e.reason === 'not-a-repository'
        ? 'run repro check inside the ML repo, or use --baseline FILE'
        : `commit a baseline on ${ref} first (repro check --update-baseline), or pass --baseline FILE`
    throw new ReproError(e.message, {subject: '--baseline-ref', hint})
  }
}

/** The baseline report: a file, or that file at a git ref. Loaded before the audit, so a missing one fails fast. */
async function loadBaseline(opts: CheckOptions, baselinePath: string): Promise<AuditReport> {
  const {config, dir} = opts.loaded
  const text = opts.baselineRef
    ? await baselineFromGit(dir, opts.baselineRef, opts.baselineFile ?? config.baseline)
    : await fs.readFile(baselinePath, 'utf8').catch(() => {
        throw new ReproError(`no baseline report at ${baselinePath}`, {
          subject: 'check',
          hint: 'create it with `repro check --update-baseline` and commit it, or pass --baseline / --baseline-ref',
        })
      })
  return parseReport(text, opts.baselineRef ? `${opts.baselineRef}:${config.baseline}` : baselinePath)
}

export async function runCheck(opts: CheckOptions): Promise<CheckReport> {
  const {config, dir} = opts.loaded
  const baselinePath = path.resolve(dir, opts.baselineFile ?? config.baseline)
  const refs = config.targets.map((t) =>
    'image' in t ? {kind: 'image' as const, value: t.image} : {kind: 'python' as const, value: path.resolve(dir, t.python)},
  )
  // the engine's answers (version, image identities) are awaited while git and the baseline are
  // read; a git or baseline problem is still the error reported first
  const pendingTargets = targetsFromRefs(
    refs,
    {
      set: config.set,
      engine: config.engine,
      device: config.device,
      memory: config.memory,
      cpus: config.cpus,
      'pids-limit': 1024,
    },
    opts.cache?.targetMemoDirs(),
  )
  pendingTargets.catch(() => undefined)
  const [git, merge_base] = await Promise.all([gitState(dir), mergeBase(dir, opts.baselineRef)])
  const baseline = opts.updateBaseline ? null : await timed('baseline', 'read + validate', () => loadBaseline(opts, baselinePath))
  const targets = await pendingTargets
  const workloads = expandWorkloads(config.workloads)
  const s = config.script
  // a script brings its own data: the generated sets would go unused (a configured CSV is still
  // read, so a broken one fails as before)
  const data =
    s && !config.data
      ? {}
      : await timed('inputs', 'workload data', () =>
          resolveWorkloadData(workloads, {
            csv: config.data ? path.resolve(dir, config.data.csv) : undefined,
            label: config.data?.label,
            rows: config.rows,
          }),
        )
  const script = s
    ? await timed('inputs', 'script spec', () =>
        resolveScriptSpec({
          ...(s.path !== undefined ? {script: s.path} : {}),
          ...(s.module !== undefined ? {module: s.module} : {}),
          ...(s.project !== undefined ? {project: s.project} : {}),
          ...(s.cwd !== undefined ? {cwd: s.cwd} : {}),
          include: s.include,
          args: s.args,
          maxSteps: s.max_steps,
          nproc: s.nproc,
          observer: s.observer,
          allowErrors: s.allow_errors,
          base: dir,
          source: 'config',
        }),
      )
    : undefined
  const audit = await runAudit({
    targets,
    repeats: config.repeats,
    seed: config.seed,
    seeds: config.seeds,
    explainBudget: 0,
    storeSteps: null,
    jobs: opts.jobs,
    cache: opts.cache,
    epochs: config.epochs,
    workloads: script ? ['script'] : workloads,
    // the baseline is repro's output too: a baseline committed after it was made must not change the copy
    ...(script ? {script: {...script, exclude: [...script.exclude, baselinePath]}} : {}),
    data: script ? {} : data,
    timeoutMs: config.timeout * 1000,
    outDir: opts.outDir,
    command: opts.command,
    progress: opts.progress,
  })
  const stamp = {...git, merge_base}
  if (opts.updateBaseline) {
    if (audit.verdict.exit_code === 2)
      throw new ReproError(`the audit could not run every target, so no baseline was written: ${audit.verdict.headline}`, {
        subject: 'check',
        hint: 'fix the failing target first',
      })
    await fs.mkdir(path.dirname(baselinePath), {recursive: true})
    await fs.writeFile(baselinePath, renderJson(audit))
    return baselineUpdated(stamp, baselinePath, audit)
  }
  return timedSync('policy', 'policy', () =>
    checkResult(
      stamp,
      {source: opts.baselineRef ? 'git' : 'file', path: baselinePath, ref: opts.baselineRef ?? null},
      baseline!,
      evaluatePolicy(audit, baseline!, config.policy),
      audit,
    ),
  )
}

export interface CheckRequest {
  configFile?: string
  baselineFile?: string
  baselineRef?: string
  updateBaseline: boolean
  outDir: string
  cache: boolean
  jobs: number
  progress: boolean
  /** --json owns stdout: annotations go to stderr */
  jsonStdout: boolean
  command: string
}

/** `repro check` once its flags are parsed: run it, write check.md, check.json and the reports, publish in Actions. */
export async function checkRequest(req: CheckRequest): Promise<{report: CheckReport; markdown: string; outDir: string}> {
  const loaded = await timed('config', 'config', () => loadCheckConfig(req.configFile))
  const outDir = path.resolve(req.outDir)
  const report = await runCheck({
    loaded,
    baselineFile: req.baselineFile,
    baselineRef: req.baselineRef,
    updateBaseline: req.updateBaseline,
    outDir,
    cache: req.cache ? new RunCache() : null,
    jobs: req.jobs,
    progress: stderrProgress(req.progress),
    command: req.command,
  })
  const markdown = timedSync('render', 'check.md', () => renderCheckMarkdown(report))
  const json = timedSync('render', 'check.json', () => renderJson(report))
  // the audit's reports (renders then writes them side by side), then check.md and check.json
  await writeReportFiles(report.audit, outDir, ALL_FORMATS)
  await timed('write reports', 'check.md, check.json', () =>
    Promise.all([fs.writeFile(path.join(outDir, 'check.md'), markdown), fs.writeFile(path.join(outDir, 'check.json'), json)]),
  )
  if (isGitHubActions(process.env)) await publishCheck(report, markdown, req.jsonStdout)
  return {report, markdown, outDir}
}

/** GitHub Actions: the summary into $GITHUB_STEP_SUMMARY, one annotation per failed check. */
async function publishCheck(report: CheckReport, md: string, json: boolean): Promise<void> {
  const summary = process.env['GITHUB_STEP_SUMMARY']
  if (summary) await fs.appendFile(summary, `${md}\n`)
  const write = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`)
  for (const c of report.policy?.checks ?? []) {
    if (c.status === 'pass') continue
    write(
      `::${c.status === 'fail' ? 'error' : 'warning'} title=${escapeWorkflowProperty(`repro check: ${c.name}`)}::${escapeWorkflowData(c.detail)}`,
    )
  }
}
