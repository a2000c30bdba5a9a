// `repro audit` as five stages: plan (core/audit-plan.ts, inside collect) → run (collect.ts) →
// compare (core/pairs.ts) → attribute (explain.ts) → report (core/report.ts). A target that
// fails is recorded and the rest go on.

import {auditSeeds} from '../core/audit-plan.js'
import {compareAll} from '../core/pairs.js'
import {assembleAuditReport, type AuditReport} from '../core/report.js'
import {encodeData} from '../artifacts/inputs.js'
import {gitState} from '../env/git.js'
import {type HostFingerprint, hostFingerprint} from '../env/host.js'
import type {AuditOptions, CacheFor, Rerunner} from './audit-types.js'
import {collect, targetConfig} from './collect.js'
import {trainRun} from './execute.js'
import {attribute} from './explain.js'
import {ensureOutDir} from './out-dir.js'
import {toolVersion} from './version.js'
import path from 'node:path'

export type {AuditOptions, AuditTargetSpec} from './audit-types.js'

export async function runAudit(opts: AuditOptions): Promise<AuditReport> {
  await ensureOutDir(opts.outDir)
  const [host, git] = await Promise.all([hostFingerprint(), gitState()])
  const data = encodeData(opts.data)
  const hostKey = hostCacheKey(host)
  const cacheFor: CacheFor = (tag) => (opts.cache ? {cache: opts.cache, host: hostKey, tag} : undefined)

  const collected = await collect({opts, data, host, git, cacheFor})
  const compared = compareAll(collected.records, collected.runs)
  const rerunner: Rerunner = {
    progress: opts.progress,
    rerun: (index, change, label, dir) => {
      const config = collected.configs.get(index)!
      const knobs = change.knobs ?? config.knobs
      const trace = change.storeSteps ? {...config.trace, store_steps: change.storeSteps} : config.trace
      const target = opts.targets[index - 1]!.target
      return trainRun({
        target,
        config: {...config, knobs, trace},
        data: data.bytes,
        outDir: path.join(opts.outDir, dir),
        timeoutMs: opts.timeoutMs,
        label,
        cache: cacheFor('r1'),
      })
    },
  }
  const attribution = await attribute({collected, compared, seeds: auditSeeds(opts.seed, opts.seeds), budget: opts.explainBudget, rerunner})
  opts.progress.close()
  return assembleAuditReport({
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
      data_source: opts.data.source,
      data_sha256: data.sha256,
      out_dir: opts.outDir,
    },
    targets: collected.records,
    comparisons: compared.records,
    attribution,
  })
}

/** What about the host changes results: CPU (model, flags), kernel, architecture, GPUs. */
export function hostCacheKey(host: HostFingerprint): Record<string, unknown> {
  return {cpu: host.cpu.brand, flags: host.cpu.flags, kernel: host.os.kernel, arch: host.os.arch, gpus: host.gpus}
}

export {targetConfig}
