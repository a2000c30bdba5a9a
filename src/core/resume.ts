// `repro audit --resume`: which planned runs of an earlier audit's --out are taken as they are.
// A run directory's completion record (written once its artifacts were read back valid) is held
// against the record the run would get now; any difference names why the cell runs again.

import type {ProbeConfig} from './config.js'

export const COMPLETION_SCHEMA = 'repro.complete/1'

/** What a finished run was made from: written next to its artifacts, compared on --resume. */
export interface CompletionRecord {
  schema: typeof COMPLETION_SCHEMA
  target: {
    /** the target's name (`python:/usr/bin/python3`, `slurm:repro-fixture:bookworm`, …) */
    name: string
    kind: string
    /** images: the image ID the run ran (a Slurm cell: the node's); null for pythons */
    image_id: string | null
    /** pythons: the interpreter path as given; null for images */
    python: string | null
  }
  /** sha256 over the probe's files (the run cache's probe hash) */
  probe: string
  /** the probe config the run trained with (knobs, seed, workload, trace, data digest) */
  config: ProbeConfig
}

/** One planned run's resume outcome: taken as it is, or run again and why. */
export type ResumeDecision = {reuse: true} | {reuse: false; reason: string}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b)

/** The keys of two objects whose values differ, sorted (at most `max`, then "…"). */
function differingKeys(a: unknown, b: unknown, max = 3): string {
  const ao = (a && typeof a === 'object' ? a : {}) as Record<string, unknown>
  const bo = (b && typeof b === 'object' ? b : {}) as Record<string, unknown>
  const keys = [...new Set([...Object.keys(ao), ...Object.keys(bo)])].filter((k) => !same(ao[k], bo[k])).sort()
  return keys.length > max ? `${keys.slice(0, max).join(', ')}, …` : keys.join(', ')
}

const short = (s: string | null) => (s === null ? 'none' : s.replace(/^sha256:/, '').slice(0, 12))

/**
 * Whether a stored run's completion record matches the one the run would get now: null when it
 * does (the run may be reused, once its artifacts read back valid), else why not, in words.
 * Strict: every field of the target, the probe and the config must be equal.
 */
export function completionMismatch(now: CompletionRecord, stored: CompletionRecord): string | null {
  if (stored.target.kind !== now.target.kind || stored.target.name !== now.target.name)
    return `it ran another target (${stored.target.name})`
  if (stored.target.image_id !== now.target.image_id)
    return `it ran image ${short(stored.target.image_id)}, the image is now ${short(now.target.image_id)}`
  if (stored.target.python !== now.target.python) return `it ran interpreter ${stored.target.python ?? 'none'}`
  if (stored.probe !== now.probe) return 'the probe changed since it ran'
  const a = stored.config
  const b = now.config
  if (a.data?.sha256 !== b.data.sha256) return 'its data differs (another data digest)'
  if (a.workload !== b.workload) return `it trained workload ${a.workload}`
  if (a.train?.seed !== b.train.seed) return `it ran seed ${a.train?.seed}, this audit seed ${b.train.seed}`
  if (!same(a.knobs, b.knobs)) return `its knobs differ (${differingKeys(a.knobs, b.knobs)})`
  if (!same(a.trace, b.trace)) return `its trace settings differ (${differingKeys(a.trace, b.trace)})`
  if (!same(a.train, b.train)) return `its training settings differ (${differingKeys(a.train, b.train)})`
  if (!same(a, b)) return `its probe config differs (${differingKeys(a, b)})`
  return null
}

/** One planned run of the collect stage as --resume saw it. */
export interface ResumeCell {
  dir: string
  decision: ResumeDecision
}

/** The report's summary of a resumed audit. */
export interface ResumeSummary {
  out_dir: string
  /** planned runs of the collect stage that were looked at */
  planned: number
  /** taken from --out as they were */
  resumed: number
  /** the runs that ran again, and why */
  reran: {dir: string; reason: string}[]
  /**
   * the explain stage's reruns (zoom, counterfactual, captures): how many were taken from --out
   * (the same target, probe and config as the rerun it would be now) and how many ran
   */
  reruns?: {resumed: number; ran: number}
}

export function summarizeResume(outDir: string, cells: ResumeCell[], reruns?: {resumed: number; ran: number}): ResumeSummary {
  const reran = cells.flatMap((c) => (c.decision.reuse ? [] : [{dir: c.dir, reason: c.decision.reason}]))
  return {
    out_dir: outDir,
    planned: cells.length,
    resumed: cells.length - reran.length,
    reran,
    ...(reruns && reruns.resumed + reruns.ran > 0 ? {reruns} : {}),
  }
}

/** "Resumed 3 of 4 runs from --out DIR; 1 ran again (t1-r2: no complete run)". */
export function resumeLine(s: ResumeSummary): string {
  const head = `Resumed ${s.resumed} of ${s.planned} run${s.planned === 1 ? '' : 's'} from --out ${s.out_dir}`
  const r = s.reruns
  const explain = r ? `; explaining: ${r.resumed} of ${r.resumed + r.ran} rerun${r.resumed + r.ran === 1 ? '' : 's'} resumed` : ''
  if (s.reran.length === 0) return `${head}; none ran again${explain}`
  const shown = s.reran.slice(0, 3).map((x) => `${x.dir}: ${x.reason}`)
  const more = s.reran.length > 3 ? `; ${s.reran.length - 3} more` : ''
  return `${head}; ${s.reran.length} ran again (${shown.join('; ')}${more})${explain}`
}
