// `repro check`: run the ML repo's configured audit and hold it against a baseline report —
// a file, or the version of that file at a git ref (`git show <ref>:<path>` via simple-git) —
// and the repo's policy. Stamps commit, branch, merge-base and dirty state.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {simpleGit} from 'simple-git'
import {evaluatePolicy, type PolicyOutcome} from '../core/policy.js'
import type {AuditReport} from '../core/report.js'
import {gitState, type GitState} from '../env/git.js'
import {ReproError} from '../errors.js'
import {renderJson} from '../report/json.js'
import {parseReport} from '../report/load.js'
import {runAudit} from './audit.js'
import type {RunCache} from './cache.js'
import type {LoadedConfig} from './check-config.js'
import {resolveData} from './data.js'
import type {Progress} from './progress.js'
import {targetsFromFlags} from './targets.js'

export const CHECK_SCHEMA = 'repro.check/1'

export interface CheckReport {
  schema: typeof CHECK_SCHEMA
  status: 'pass' | 'fail' | 'baseline-updated'
  exit_code: 0 | 1
  git: GitState & {merge_base: string | null}
  baseline: {source: 'file' | 'git'; path: string; ref: string | null; commit: string | null; created: string | null}
  policy: PolicyOutcome | null
  audit: AuditReport
}

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

async function mergeBase(dir: string, ref: string | undefined): Promise<string | null> {
  if (!ref) return null
  try {
    return (await simpleGit({baseDir: dir}).raw(['merge-base', 'HEAD', ref])).trim() || null
  } catch {
    return null
  }
}

/** The baseline report text at a git ref, for a path given relative to the config's directory. */
async function baselineFromGit(dir: string, ref: string, file: string): Promise<string> {
  const git = simpleGit({baseDir: dir})
  let top: string
  try {
    top = (await git.revparse(['--show-toplevel'])).trim()
  } catch {
    throw new ReproError(`${dir} is not inside a git repository`, {
      subject: '--baseline-ref',
      hint: 'run repro check inside the ML repo, or use --baseline FILE',
    })
  }
  const rel = path.relative(top, path.resolve(dir, file)).split(path.sep).join('/')
  try {
    return await git.show([`${ref}:${rel}`])
  } catch (e) {
    const why =
      String((e as Error).message ?? '')
        .split('\n')
        .find((l) => l.trim()) ?? 'git show failed'
    throw new ReproError(`no baseline at ${ref}:${rel} (${why.trim().slice(0, 160)})`, {
      subject: '--baseline-ref',
      hint: `commit a baseline on ${ref} first (repro check --update-baseline), or pass --baseline FILE`,
    })
  }
}

export async function runCheck(opts: CheckOptions): Promise<CheckReport> {
  const {config, dir} = opts.loaded
  const baselinePath = path.resolve(dir, opts.baselineFile ?? config.baseline)
  const [git, merge_base] = await Promise.all([gitState(dir), mergeBase(dir, opts.baselineRef)])

  // Load the baseline before spending minutes on the audit: a missing one fails fast.
  let baseline: AuditReport | null = null
  if (!opts.updateBaseline) {
    const text = opts.baselineRef
      ? await baselineFromGit(dir, opts.baselineRef, opts.baselineFile ?? config.baseline)
      : await fs.readFile(baselinePath, 'utf8').catch(() => {
          throw new ReproError(`no baseline report at ${baselinePath}`, {
            subject: 'check',
            hint: 'create it with `repro check --update-baseline` and commit it, or pass --baseline / --baseline-ref',
          })
        })
    baseline = parseReport(text, opts.baselineRef ? `${opts.baselineRef}:${config.baseline}` : baselinePath)
  }

  const argv = config.targets.flatMap((t) => ('image' in t ? ['--image', t.image] : ['--python', path.resolve(dir, t.python)]))
  const targets = await targetsFromFlags(argv, {
    python: config.targets.flatMap((t) => ('python' in t ? [path.resolve(dir, t.python)] : [])),
    image: config.targets.flatMap((t) => ('image' in t ? [t.image] : [])),
    set: config.set,
    engine: config.engine,
    device: config.device,
    memory: config.memory,
    cpus: config.cpus,
    'pids-limit': 1024,
  })
  const data = await resolveData({
    csv: config.data ? path.resolve(dir, config.data.csv) : undefined,
    label: config.data?.label,
    rows: config.rows,
  })
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
    data,
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
    return {
      schema: CHECK_SCHEMA,
      status: 'baseline-updated',
      exit_code: 0,
      git: stamp,
      baseline: {source: 'file', path: baselinePath, ref: null, commit: git.commit, created: audit.created},
      policy: null,
      audit,
    }
  }
  const policy = evaluatePolicy(audit, baseline!, config.policy)
  const baseGit = baseline!.git as {commit?: string} | null
  return {
    schema: CHECK_SCHEMA,
    status: policy.status,
    exit_code: policy.status === 'pass' ? 0 : 1,
    git: stamp,
    baseline: {
      source: opts.baselineRef ? 'git' : 'file',
      path: baselinePath,
      ref: opts.baselineRef ?? null,
      commit: typeof baseGit?.commit === 'string' ? baseGit.commit : null,
      created: baseline!.created,
    },
    policy,
    audit,
  }
}
