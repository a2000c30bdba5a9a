// `repro audit` as five stages: plan (core/audit-plan.ts, inside collect) → run (collect.ts) →
// compare (core/pairs.ts) → attribute (explain.ts) → report (core/assemble.ts), compare and
// attribute once per workload. A target (or one workload in it) that fails is recorded and the
// rest go on.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {assembleAuditReport} from '../core/assemble.js'
import {auditSeeds} from '../core/audit-plan.js'
import {compareAll} from '../core/pairs.js'
import {contrastWorkloads, type WorkloadContrast} from '../core/suspects.js'
import type {AuditReport, PairRecord} from '../core/report.js'
import type {ProbeConfig} from '../core/config.js'
import {WORKLOADS} from '../core/workloads.js'
import {type ResumeCell, summarizeResume} from '../core/resume.js'
import {encodeWorkloadData, type EncodedData} from '../artifacts/inputs.js'
import {gitState} from '../env/git.js'
import {type HostFingerprint, hostFingerprint} from '../env/host.js'
import {recordSpan, timed} from '../env/timings.js'
import type {AuditOptions, AuditWorkload, CacheFor, Collected, Rerunner} from './audit-types.js'
import {scriptDigest} from './script-inputs.js'
import {collect, completionFor, resumeCheck, runDirName, writeCompletion} from './collect.js'
import {replayForwardRun, replayRun, scriptReplayRun, trainRun} from './execute.js'
import {hostProbeEnv} from '../targets/target.js'
import {RecordedTarget} from '../targets/recorded.js'
import {attribute} from './explain.js'
import {ensureOutDir} from './out-dir.js'
import {limiter, withDevice} from './pool.js'
import {toolVersion} from './version.js'

export type {AuditOptions, AuditTargetSpec} from './audit-types.js'

export async function runAudit(options: AuditOptions): Promise<AuditReport> {
  await ensureOutDir(options.outDir, {resume: Boolean(options.resume)})
  // the audit's own output folder is never part of the project copy, wherever it lies
  const opts: AuditOptions = options.script
    ? {...options, script: {...options.script, exclude: [...options.script.exclude, path.resolve(options.outDir)]}}
    : options
  // kept per boot in the run cache (env/host.ts says what its key covers); --no-cache measures.
  // The run cache keys on the host, so with a cache the runs wait for it (a memo read). Without
  // one, the host is measured (~0.2 s of helper programs, ~0.1 s of it node's own time) once the
  // first run is under way, so it does not hold back that run's start, and each run's
  // target.json gets it when it is there.
  let startMeasuring!: () => void
  const measured = new Promise<void>((resolve) => {
    startMeasuring = resolve
  })
    .then(() => Promise.all([hostFingerprint(opts.cache ? {memoDir: opts.cache.hostMemoDir()} : {}), gitState()]))
    .then(([host, git]) => ({host, git}))
  measured.catch(() => {}) // awaited below; the runs may start first
  if (opts.cache) startMeasuring()
  const measuredFirst = opts.cache ? await measured : null
  // a user's script brings its own data: no data file, and its digest instead
  const none: EncodedData = {bytes: Buffer.alloc(0), sha256: ''}
  const data = new Map(
    opts.workloads.map((w) => [w, w === 'script' ? none : encodeWorkloadData(opts.data[w]!)] as [AuditWorkload, EncodedData]),
  )
  const scriptSha256 = opts.script ? await timed('inputs', 'script digest', () => scriptDigest(opts.script!)) : undefined
  const hostKey = measuredFirst ? hostCacheKey(measuredFirst.host) : null
  const cacheFor: CacheFor = (tag) => (opts.cache && hostKey ? {cache: opts.cache, host: hostKey, tag} : undefined)

  const resumed: ResumeCell[] | undefined = opts.resume ? [] : undefined
  // --resume: the explain stage's reruns are taken from --out too when they match
  const rerunsResumed = opts.resume ? {resumed: 0, ran: 0} : undefined
  const context = measuredFirst ?? measured
  const collected = await collect({
    opts,
    data,
    context,
    onRunStarted: startMeasuring,
    cacheFor,
    ...(scriptSha256 ? {scriptSha256} : {}),
    ...(resumed ? {resumed} : {}),
  })
  startMeasuring() // no run was started (every one resumed): measure now
  const many = opts.workloads.length > 1
  const comparisons: PairRecord[] = []
  const workloads: Parameters<typeof assembleAuditReport>[0]['workloads'] = []
  const contrasts: WorkloadContrast[] = []
  const compareStart = performance.now()
  // every workload's experiments at once, their reruns and replays bounded together by --jobs
  // (batched targets: each wave goes to the scheduler whole, as one array that --jobs throttles)
  const limit = limiter(opts.targets.every((t) => t.target.batched) ? Number.POSITIVE_INFINITY : Math.max(1, opts.jobs))
  const explained = opts.workloads.map((w) => {
    const c = collected.byWorkload.get(w)!
    const compared = compareAll(collected.records, c.runs)
    if (many || w !== 'mlp') for (const p of compared.records) p.workload = w
    const rerunner = rerunnerFor(opts, w, c, data.get(w)!, cacheFor, rerunsResumed)
    const attribution = attribute({
      limit,
      collected: c,
      compared,
      seeds: auditSeeds(opts.seed, opts.seeds),
      budget: opts.explainBudget,
      rerunner,
    })
    return {w, c, compared, attribution}
  })
  const attributions = await Promise.all(explained.map((e) => e.attribution))
  for (const [i, {w, c, compared}] of explained.entries()) {
    comparisons.push(...compared.records)
    const attribution = attributions[i]
    const metric = w === 'script' ? 'val_accuracy' : WORKLOADS[w].outcomeMetric
    workloads.push({workload: w, outcome_metric: metric, ...(attribution ? {attribution} : {})})
    contrasts.push({
      workload: w,
      drifts: compared.cross.some(
        ({record}) => !record.divergence.bitwise_identical && (record.noise === undefined || record.noise.beyond > 0),
      ),
      moduleTypes: [...new Set(Object.values([...c.runs.values()][0]?.[0]?.outcome.module_types ?? {}))],
      ...(attribution ? {attribution} : {}),
    })
  }
  if (many) contrastWorkloads(contrasts)
  recordSpan('compare + attribution', 'compare + attribution', compareStart)
  opts.progress.close()
  const first = data.get(opts.workloads[0]!)!
  const {host, git} = await measured
  const assembleStart = performance.now()
  const report = assembleAuditReport({
    created: new Date().toISOString(),
    version: toolVersion(),
    command: opts.command,
    host,
    git,
    settings: {
      repeats: opts.repeats,
      seed: opts.seed,
      seeds: opts.seeds,
      epochs: opts.epochs,
      data_source: opts.workloads
        .map(
          (w) =>
            `${many ? `${w}: ` : ''}${w === 'script' ? `the script's own (${opts.script!.path ? path.basename(opts.script!.path) : `-m ${opts.script!.module}`})` : opts.data[w]!.source}`,
        )
        .join(', '),
      data_sha256: first.sha256,
      out_dir: opts.outDir,
      ...(many || opts.workloads[0] !== 'mlp' ? {workloads: opts.workloads} : {}),
    },
    targets: collected.records,
    comparisons,
    workloads,
    ...(resumed ? {resume: summarizeResume(opts.outDir, resumed, rerunsResumed)} : {}),
  })
  recordSpan('assemble report', 'assemble report', assembleStart)
  return report
}

/**
 * Reruns of one workload's targets (zoom, counterfactual knobs, op replays) with the audit's own
 * settings; a run on a GPU holds that device's lock like the audit's own runs.
 */
function rerunnerFor(
  opts: AuditOptions,
  w: AuditWorkload,
  c: Collected,
  data: EncodedData,
  cacheFor: CacheFor,
  resumed?: {resumed: number; ran: number},
): Rerunner {
  const dirOf = (dir: string) => path.join(opts.outDir, w === 'mlp' ? dir : `${w}-${dir}`)
  /** a rerun's or replay's directory, emptied first, as the matrix's runs are (collect.ts) */
  const fresh = async (dir: string) => {
    await fs.rm(dir, {recursive: true, force: true})
    return dir
  }
  return {
    progress: opts.progress,
    rerun: async (index, change, label, dir) => {
      const config = c.configs.get(index)!
      const knobs = change.knobs ?? config.knobs
      const stored = change.storeSteps ? {...config.trace, store_steps: change.storeSteps} : config.trace
      const trace = change.capture ? {...stored, capture: change.capture} : stored
      const spec = opts.targets[index - 1]!
      const outDir = dirOf(dir)
      const rerunConfig = {...config, knobs, trace}
      // --resume: the rerun an earlier audit of the same inputs left in --out is taken as it is
      if (resumed) {
        const kept = await resumeCheck(outDir, spec, rerunConfig, label)
        if (kept.artifacts) {
          resumed.resumed++
          return {artifacts: kept.artifacts, seconds: 0, outDir}
        }
        resumed.ran++
      }
      await fresh(outDir)
      // the same inputs as the run it repeats: a script run carries the script, not data
      const script = config.script ? opts.script : undefined
      const r = await withDevice(knobs.device, () =>
        trainRun({
          target: spec.target,
          config: rerunConfig,
          data: data.bytes.length ? data.bytes : null,
          outDir,
          timeoutMs: opts.timeoutMs,
          label,
          cache: cacheFor('r1'),
          ...(script ? {script} : {}),
        }),
      )
      await writeCompletion(outDir, await completionFor(spec, rerunConfig, outDir))
      return {...r, outDir}
    },
    replayForward: (index, req, dir) => {
      const config = c.configs.get(index)!
      return withDevice((req.knobs ?? config.knobs).device, () => replayForwardOn(index, req, dir, config))
    },
    canReplay: (index) => !(opts.targets[index - 1]!.target instanceof RecordedTarget),
    replay: (index, plan, inputs, dir, knobs) =>
      withDevice((knobs ?? c.configs.get(index)!.knobs).device, async () =>
        replayRun({
          target: opts.targets[index - 1]!.target,
          knobs: knobs ?? c.configs.get(index)!.knobs,
          plan,
          inputs,
          outDir: await fresh(dirOf(dir)),
          timeoutMs: opts.timeoutMs,
        }),
      ),
  }

  async function replayForwardOn(index: number, req: Parameters<Rerunner['replayForward']>[1], dir: string, config: ProbeConfig) {
    const outDir = await fresh(dirOf(dir))
    if (config.script && opts.script)
      return scriptReplayRun({
        target: opts.targets[index - 1]!.target,
        config: {...config, knobs: req.knobs ?? config.knobs},
        script: opts.script,
        captureDir: req.captureDir!,
        step: req.step!,
        module: req.module!,
        toggle: req.toggle,
        outDir,
        timeoutMs: opts.timeoutMs,
        label: `replay ${req.module} in #${index}`,
      })
    return replayForwardRun({
      target: opts.targets[index - 1]!.target,
      config: {...config, knobs: req.knobs ?? config.knobs},
      data: data.bytes,
      kind: req.kind,
      ...(req.captureDir ? {captureDir: req.captureDir} : {}),
      toggle: req.toggle,
      ...(req.step !== undefined ? {step: req.step} : {}),
      ...(req.module !== undefined ? {module: req.module} : {}),
      outDir,
      timeoutMs: opts.timeoutMs,
    })
  }
}

/** What about the host changes results: CPU (model, flags), kernel, architecture, GPUs, a CPU emulation (REPRO_EMULATE_CPU). */
export function hostCacheKey(host: HostFingerprint): Record<string, unknown> {
  const emulate = hostProbeEnv()['REPRO_EMULATE_CPU']
  return {
    cpu: host.cpu.brand,
    flags: host.cpu.flags,
    kernel: host.os.kernel,
    arch: host.os.arch,
    gpus: host.gpus,
    ...(emulate ? {emulate_cpu: emulate} : {}),
  }
}

export {runDirName}
