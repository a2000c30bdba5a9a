// Aligns two execution-ordered training traces step by step and entry by entry, and finds the
// first divergence. Digests decide identity; stored values (when both runs kept them) add metrics.

import {compareValues, type TensorMetrics} from './metrics.js'
import {
  storedKey,
  type DType,
  type StepId,
  type StoredValues,
  type Tolerance,
  type Trace,
  type TraceEntry,
  type TraceStep,
} from './types.js'

/** Where in a training step an entry is produced; 'other' for names outside the probe's scheme. */
export type Phase = 'forward' | 'loss' | 'backward' | 'update' | 'buffer' | 'other'

/** Phase from the entry-name prefix. At step 'init', param/ and buffer/ are the initial state. */
export function entryPhase(name: string): Phase {
  // the model's output (out, out/<Root> in script mode) and eager replays are forward values too
  if (name.startsWith('fwd/') || name === 'out' || name.startsWith('out/') || name.startsWith('out#') || name.startsWith('replay/'))
    return 'forward'
  if (name === 'loss' || name.startsWith('loss/') || name.startsWith('loss#')) return 'loss'
  if (name.startsWith('grad/')) return 'backward'
  if (name.startsWith('param/') || name.startsWith('opt/')) return 'update'
  if (name.startsWith('buffer/')) return 'buffer'
  return 'other'
}

/** Entries of the model's state (gradients, parameters, buffers, optimizer state): what ranks that split the data still share. */
export function isStateEntry(name: string): boolean {
  return name.startsWith('grad/') || name.startsWith('param/') || name.startsWith('buffer/') || name.startsWith('opt/')
}

export type EntryDiffKind = 'value' | 'shape' | 'missing_in_a' | 'missing_in_b'

export interface FirstDivergence {
  step: StepId
  entry: string
  /** Position in the aligned step: entries of `a` in order, then entries only in `b`. */
  index_in_step: number
  kind: 'value' | 'missing' | 'shape'
  phase: Phase
}

export interface StepSummary {
  step: StepId
  epoch: number | null
  entries: number
  differing: number
  /** Both traces marked the step as stored. */
  stored: boolean
}

export interface DifferingEntry {
  step: StepId
  name: string
  index_in_step: number
  phase: Phase
  /** dtype of `a`'s entry (of `b`'s for missing_in_a). */
  dtype: DType
  /** 'shape' = dtype or shape differ in the trace metadata. */
  kind: EntryDiffKind
  /** Present when both runs stored values for this step and entry (b compared against a). */
  metrics: TensorMetrics | null
}

/** Per entry name across steps: the divergence-map row. Magnitudes are null while unknown. */
export interface EntryWorst {
  name: string
  phase: Phase
  /** Steps where the entry appears on either side. */
  occurrences: number
  /** Steps where it differs (including missing on one side). */
  differing: number
  /** Steps with a known magnitude: digest-identical (0) or compared values. */
  measured: number
  max_rel_l2: number | null
  max_abs: number | null
  max_rel_l2_step: StepId | null
  beyond_tolerance: number
}

export interface TraceCounts {
  entries: number
  identical: number
  differing: number
  differing_with_values: number
  /** Stored values out of tolerance, plus every dtype/shape mismatch. */
  beyond_tolerance: number
  shape: number
  missing_in_a: number
  missing_in_b: number
  /** entries one side does not record by design (a compiled run's per-layer outputs and eager replays) */
  not_recorded?: number
}

export interface TraceComparison {
  bitwise_identical: boolean
  first_divergence: FirstDivergence | null
  steps: StepSummary[]
  differing: DifferingEntry[]
  counts: TraceCounts
  /** In order of first appearance (execution order). */
  worst: EntryWorst[]
}

export interface TraceCompareOptions {
  fp32: Tolerance
  fp64: Tolerance
  /** compare only the entries this accepts (absent: all); the others are neither counted nor reported */
  only?: (name: string) => boolean
}

function stepOrder(s: StepId): number {
  return s === 'init' ? -Infinity : s
}

/** First occurrence of each step id wins (a valid trace has no duplicates). */
function indexSteps(t: Trace): Map<StepId, TraceStep> {
  const m = new Map<StepId, TraceStep>()
  for (const s of t.steps) if (!m.has(s.step)) m.set(s.step, s)
  return m
}

function sameShape(a: number[], b: number[]): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** A trace entry as aligned: a replay renamed as its layer remembers the name its values are stored under. */
type Aligned = TraceEntry & {stored_as?: string}

/** A compiled run's step with its eager replays named as the layers they replay (replay/fwd/X → fwd/X). */
function replayAsLayers(step: TraceStep | undefined, on: boolean): TraceStep | undefined {
  if (!step || !on) return step
  return {
    ...step,
    entries: step.entries.map((e) =>
      e.name.startsWith('replay/fwd/') ? {...e, name: e.name.slice('replay/'.length), stored_as: e.name} : e,
    ),
  }
}

/** Name → indices in `entries`, consumed in order so duplicate names pair up positionally. */
class NameQueue {
  private readonly byName = new Map<string, {idx: number[]; next: number}>()
  constructor(entries: TraceEntry[]) {
    entries.forEach((e, i) => {
      const q = this.byName.get(e.name)
      if (q) q.idx.push(i)
      else this.byName.set(e.name, {idx: [i], next: 0})
    })
  }

  take(name: string): number | undefined {
    const q = this.byName.get(name)
    if (!q || q.next >= q.idx.length) return undefined
    return q.idx[q.next++]
  }
}

/**
 * Compares trace `b` against the reference trace `a`. Steps are aligned by id ('init' first,
 * then ascending), entries by name within a step. Linear in the number of entries; values are
 * read only for entries whose digests differ.
 */
export function compareTraces(a: Trace, av: StoredValues, b: Trace, bv: StoredValues, opts: TraceCompareOptions): TraceComparison {
  const stepsA = indexSteps(a)
  const stepsB = indexSteps(b)
  const ids = [...new Set<StepId>([...stepsA.keys(), ...stepsB.keys()])].sort((x, y) => stepOrder(x) - stepOrder(y))
  // A compiled run (capture 'boundaries') has no per-layer outputs and records eager replays
  // instead: entries of those kinds that only one side has are not recorded, not divergent.
  const partial = a.capture === 'boundaries' || b.capture === 'boundaries'
  // Against an eager run, a compiled run's eager replay of a layer (replay/fwd/X, same inputs and
  // parameters) lines up with that layer's output (fwd/X): where they agree and the compiled
  // output differs, the compiled program made the difference. Two compiled runs compare as is.
  const alias = (t: Trace, other: Trace) => t.capture === 'boundaries' && other.capture !== 'boundaries'
  const comparer = new TraceComparer(av, bv, opts, partial ? (name) => /^(fwd|replay)\//.test(name) : () => false)
  for (const id of ids) comparer.step(id, replayAsLayers(stepsA.get(id), alias(a, b)), replayAsLayers(stepsB.get(id), alias(b, a)))
  return comparer.result()
}

/** The running state of one trace comparison: counts, per-entry worst, the first divergence. */
class TraceComparer {
  private readonly counts: TraceCounts = {
    entries: 0,
    identical: 0,
    differing: 0,
    differing_with_values: 0,
    beyond_tolerance: 0,
    shape: 0,
    missing_in_a: 0,
    missing_in_b: 0,
  }
  private readonly steps: StepSummary[] = []
  private readonly differing: DifferingEntry[] = []
  private readonly worst = new Map<string, EntryWorst>()
  private first: FirstDivergence | null = null

  constructor(
    private readonly av: StoredValues,
    private readonly bv: StoredValues,
    private readonly opts: TraceCompareOptions,
    /** entries that may be absent on one side without counting as a difference */
    private readonly optional: (name: string) => boolean,
  ) {}

  step(id: StepId, sa: TraceStep | undefined, sb: TraceStep | undefined): void {
    const only = this.opts.only
    const ea = only ? (sa?.entries ?? []).filter((e) => only(e.name)) : (sa?.entries ?? [])
    const eb = only ? (sb?.entries ?? []).filter((e) => only(e.name)) : (sb?.entries ?? [])
    const summary: StepSummary = {
      step: id,
      epoch: sa?.epoch ?? sb?.epoch ?? null,
      entries: 0,
      differing: 0,
      stored: Boolean(sa?.stored && sb?.stored),
    }
    const queue = new NameQueue(eb)
    const usedB = new Uint8Array(eb.length)
    let index = 0
    for (const x of ea) {
      const j = queue.take(x.name)
      if (j !== undefined) usedB[j] = 1
      if (j === undefined && this.optional(x.name)) {
        this.counts.not_recorded = (this.counts.not_recorded ?? 0) + 1
        continue
      }
      const w = this.worstOf(x.name)
      const at = index++
      if (j === undefined) {
        this.counts.missing_in_b++
        this.record(
          summary,
          {step: id, name: x.name, index_in_step: at, phase: w.phase, dtype: x.dtype, kind: 'missing_in_b', metrics: null},
          w,
        )
      } else this.entry(summary, id, at, x, eb[j]!, w)
    }
    eb.forEach((y, j) => {
      if (usedB[j]) return
      if (this.optional(y.name)) {
        this.counts.not_recorded = (this.counts.not_recorded ?? 0) + 1
        return
      }
      const w = this.worstOf(y.name)
      this.counts.missing_in_a++
      this.record(
        summary,
        {step: id, name: y.name, index_in_step: index++, phase: w.phase, dtype: y.dtype, kind: 'missing_in_a', metrics: null},
        w,
      )
    })
    summary.entries = index
    this.counts.entries += index
    this.steps.push(summary)
  }

  /** One entry present on both sides: equal digests, or measured where values were stored. */
  private entry(summary: StepSummary, id: StepId, at: number, x: TraceEntry, y: TraceEntry, w: EntryWorst): void {
    const sameMeta = x.dtype === y.dtype && sameShape(x.shape, y.shape)
    if (sameMeta && x.sha256 === y.sha256) {
      this.counts.identical++
      w.measured++
      if (w.max_rel_l2 === null) {
        w.max_rel_l2 = 0
        w.max_abs = 0
        w.max_rel_l2_step = id
      }
      return
    }
    // an aliased replay keeps its values under its own name
    const va = this.av.get(storedKey(id, (x as Aligned).stored_as ?? x.name))
    const vb = this.bv.get(storedKey(id, (y as Aligned).stored_as ?? y.name))
    const metrics = va && vb ? compareValues(vb, va, x.dtype === 'float64' ? this.opts.fp64 : this.opts.fp32) : null
    if (!sameMeta) this.counts.shape++
    if (metrics) {
      this.counts.differing_with_values++
      w.measured++
      if (w.max_rel_l2 === null || metrics.rel_l2 > w.max_rel_l2) {
        w.max_rel_l2 = metrics.rel_l2
        w.max_rel_l2_step = id
      }
      if (w.max_abs === null || metrics.max_abs > w.max_abs) w.max_abs = metrics.max_abs
    }
    if (!sameMeta || (metrics && !metrics.within_tolerance)) {
      this.counts.beyond_tolerance++
      w.beyond_tolerance++
    }
    const kind = sameMeta ? 'value' : 'shape'
    this.record(summary, {step: id, name: x.name, index_in_step: at, phase: w.phase, dtype: x.dtype, kind, metrics}, w)
  }

  private worstOf(name: string): EntryWorst {
    let w = this.worst.get(name)
    if (!w) {
      w = {
        name,
        phase: entryPhase(name),
        occurrences: 0,
        differing: 0,
        measured: 0,
        max_rel_l2: null,
        max_abs: null,
        max_rel_l2_step: null,
        beyond_tolerance: 0,
      }
      this.worst.set(name, w)
    }
    w.occurrences++
    return w
  }

  private record(summary: StepSummary, d: DifferingEntry, w: EntryWorst): void {
    summary.differing++
    this.differing.push(d)
    this.counts.differing++
    w.differing++
    if (this.first === null) {
      const kind = d.kind === 'value' || d.kind === 'shape' ? d.kind : 'missing'
      this.first = {step: d.step, entry: d.name, index_in_step: d.index_in_step, kind, phase: d.phase}
    }
  }

  result(): TraceComparison {
    return {
      bitwise_identical: this.counts.differing === 0,
      first_divergence: this.first,
      steps: this.steps,
      differing: this.differing,
      counts: this.counts,
      worst: [...this.worst.values()],
    }
  }
}
