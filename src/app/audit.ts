// `repro audit`: every target × repeats, then compare (repeats within a target, each target
// against the first), then the verdict. A target that fails is recorded and the rest go on.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {DEFAULT_KNOBS, defaultProbeConfig} from '../core/config.js'
import type {TabularData} from '../core/data.js'
import {diffFingerprints} from '../core/fingerprint-diff.js'
import {compareTraces} from '../core/trace-compare.js'
import {decideVerdict, REPORT_SCHEMA, summarizeDivergence, type AuditReport, type PairRecord, type TargetRecord} from '../core/report.js'
import {DEFAULT_FP32_TOLERANCE, DEFAULT_FP64_TOLERANCE, type Knobs, type RunArtifacts} from '../core/types.js'
import {encodeData} from '../artifacts/inputs.js'
import {gitState} from '../env/git.js'
import {hostFingerprint} from '../env/host.js'
import {isReproError} from '../errors.js'
import type {Target} from '../targets/target.js'
import {trainRun} from './execute.js'
import type {Progress} from './progress.js'
import {toolVersion} from './version.js'

export interface AuditTargetSpec {
  target: Target
  knobs: Knobs
  role: 'target' | 'variant'
  /** The demo's knob variant is only known once the first target reports its defaults. */
  deriveKnobs?: (firstRunKnobs: Record<string, unknown>) => Knobs
}

export interface AuditOptions {
  targets: AuditTargetSpec[]
  repeats: number
  seed: number
  epochs: number
  data: TabularData
  timeoutMs: number
  outDir: string
  command: string
  progress: Progress
}

export function knobSuffix(knobs: Knobs): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(knobs)) {
    if (k === 'env') continue
    if (JSON.stringify(v) !== JSON.stringify((DEFAULT_KNOBS as unknown as Record<string, unknown>)[k])) parts.push(`${k}=${v}`)
  }
  for (const [k, v] of Object.entries(knobs.env)) parts.push(`env.${k}=${v}`)
  return parts.length ? ` [${parts.join(', ')}]` : ''
}

export async function runAudit(opts: AuditOptions): Promise<AuditReport> {
  await fs.mkdir(opts.outDir, {recursive: true})
  const [host, git] = await Promise.all([hostFingerprint(), gitState()])
  const data = encodeData(opts.data)
  const records: TargetRecord[] = []
  const runs = new Map<number, RunArtifacts[]>()
  let firstKnobs: Record<string, unknown> | null = null

  for (const [i, spec] of opts.targets.entries()) {
    const index = i + 1
    const knobs = spec.deriveKnobs && firstKnobs ? spec.deriveKnobs(firstKnobs) : spec.knobs
    const name = `#${index} ${spec.target.name}${knobSuffix(knobs)}`
    const record: TargetRecord = {index, name, kind: spec.target.kind, role: spec.role, knobs_requested: knobs, identity: null, status: 'ok', error: null, runs: []}
    records.push(record)
    const config = {...defaultProbeConfig({file: 'data.safetensors', sha256: data.sha256}, opts.seed), knobs}
    config.train.epochs = opts.epochs
    const done: RunArtifacts[] = []
    for (let r = 1; r <= opts.repeats; r++) {
      const what = `${name} · repeat ${r}/${opts.repeats}`
      const outDir = path.join(opts.outDir, `t${index}-r${r}`)
      opts.progress.start(what)
      try {
        const {artifacts, seconds} = await trainRun({target: spec.target, config, data: data.bytes, outDir, timeoutMs: opts.timeoutMs, label: `${name} r${r}`, context: {host, git}})
        opts.progress.done(what, seconds)
        done.push(artifacts)
        record.runs.push({
          repeat: r,
          dir: outDir,
          seconds,
          final: artifacts.outcome.final,
          epochs: artifacts.outcome.epochs,
          knobs_effective: artifacts.outcome.knobs_effective,
          timings: artifacts.outcome.timings,
        })
        if (index === 1 && r === 1) firstKnobs = artifacts.outcome.knobs_effective
      } catch (e) {
        if (!isReproError(e)) throw e
        // Known failure: record it and go on with the other targets; repeats would fail alike.
        // Name the numbered target: the same interpreter or image may appear twice.
        const line = `${name}: ${e.message} — ${e.hint}`
        opts.progress.fail(what, line)
        record.status = 'error'
        record.error = {message: e.message, hint: e.hint, line}
        break
      }
    }
    if (record.status === 'ok') {
      record.identity = await spec.target.identify().then((id) => ({reference: id.reference, details: id.details}), () => null)
      runs.set(index, done)
    }
  }
  opts.progress.close()

  const comparisons: PairRecord[] = []
  for (const rec of records) {
    const rs = runs.get(rec.index)
    if (!rs) continue
    for (let r = 1; r < rs.length; r++) comparisons.push(pair('repeat', rec, 1, rs[0]!, rec, r + 1, rs[r]!))
  }
  const base = records.find((t) => runs.has(t.index) && t.role === 'target')
  if (base) {
    for (const rec of records) {
      if (rec === base || !runs.has(rec.index)) continue
      comparisons.push(pair(rec.role === 'variant' ? 'variant' : 'cross', base, 1, runs.get(base.index)![0]!, rec, 1, runs.get(rec.index)![0]!))
    }
  }
  return {
    schema: REPORT_SCHEMA,
    tool: {name: 'repro', version: toolVersion()},
    created: new Date().toISOString(),
    command: opts.command,
    host,
    git,
    settings: {repeats: opts.repeats, seed: opts.seed, epochs: opts.epochs, data_source: opts.data.source, data_sha256: data.sha256, out_dir: opts.outDir},
    targets: records,
    comparisons,
    verdict: decideVerdict(records, comparisons),
  }
}

export function pair(role: PairRecord['role'], ta: TargetRecord, ra: number, a: RunArtifacts, tb: TargetRecord, rb: number, b: RunArtifacts): PairRecord {
  return comparePair(role, {target: ta.index, repeat: ra, name: `${ta.name} r${ra}`}, a, {target: tb.index, repeat: rb, name: `${tb.name} r${rb}`}, b)
}

export function comparePair(role: PairRecord['role'], aRef: PairRecord['a'], a: RunArtifacts, bRef: PairRecord['b'], b: RunArtifacts): PairRecord {
  const cmp = compareTraces(a.trace, a.values, b.trace, b.values, {fp32: DEFAULT_FP32_TOLERANCE, fp64: DEFAULT_FP64_TOLERANCE})
  const fp = diffFingerprints(a.fingerprint, b.fingerprint)
  const accA = a.outcome.final.val_accuracy
  const accB = b.outcome.final.val_accuracy
  const lossA = a.outcome.final.val_loss
  const lossB = b.outcome.final.val_loss
  const changes = fp.rows.filter((row) => row.changed)
  return {
    role,
    a: aRef,
    b: bRef,
    divergence: summarizeDivergence(cmp),
    outcome: {
      val_accuracy_a: accA,
      val_accuracy_b: accB,
      accuracy_delta: accA !== null && accB !== null ? accB - accA : null,
      val_loss_delta: lossA !== null && lossB !== null ? lossB - lossA : null,
    },
    fingerprint_changes: changes,
    fingerprint_changed: changes.length,
  }
}
