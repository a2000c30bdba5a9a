// Data-parallel runs (knobs.world_size > 1): what the replica check of each target's runs says,
// as plain sentences the renderers print. Pure.

import type {DistributedInfo, RunOutcome} from './types.js'

/** The world size a run trained at (1 without a distributed section). */
export const worldSize = (run: {distributed?: DistributedInfo}): number => run.distributed?.world_size ?? 1

/**
 * Two script runs at different world sizes: each rank feeds its own slice of the data (the script
 * splits it), so module outputs, `out` and `loss` are per-rank; only the state entries compare.
 */
export function acrossWorldSizes(a: Pick<RunOutcome, 'script' | 'distributed'>, b: Pick<RunOutcome, 'script' | 'distributed'>): boolean {
  return Boolean(a.script && b.script) && worldSize(a) !== worldSize(b)
}

export const ACROSS_WORLD_SIZES_NOTE =
  'the script splits its own data: only gradients, parameters, buffers and optimizer state are compared across world sizes'

/** The note for a report whose script runs trained at more than one world size, else null. */
export function scriptWorldSizesNote(report: {targets: {runs: {script?: unknown; distributed?: DistributedInfo}[]}[]}): string | null {
  const sizes = new Set(report.targets.flatMap((t) => t.runs.filter((r) => r.script).map(worldSize)))
  return sizes.size > 1 ? `World sizes ${[...sizes].sort((x, y) => x - y).join(', ')}: ${ACROSS_WORLD_SIZES_NOTE}.` : null
}

/** What the notes read of a report's targets (structural: report.ts builds its verdict from them). */
interface TargetRuns {
  index: number
  runs: {repeat: number; workload?: string; distributed?: DistributedInfo}[]
}

export interface ReplicaNote {
  target: number
  /** a rank's parameters drifted from rank 0's in some run */
  drift: boolean
  text: string
}

/** One note per target with data-parallel runs: the world size, the backend and the replica check over its runs. */
export function replicaNotes(report: {targets: TargetRuns[]}): ReplicaNote[] {
  const out: ReplicaNote[] = []
  for (const t of report.targets) {
    const runs = t.runs.filter((r) => r.distributed)
    if (runs.length === 0) continue
    const d = runs[0]!.distributed!
    const drifted = runs.filter((r) => r.distributed!.replicas.drift)
    const checks = runs.reduce((n, r) => n + r.distributed!.replicas.checked.length, 0)
    // a script's ranks (--script-nproc) are checked at the end only
    const when = runs.every((r) => r.distributed!.replicas.checked.every((c) => c === 'end')) ? 'the end' : 'stored steps and the end'
    const where = (r: (typeof runs)[number]) => {
      const x = r.distributed!.replicas.drift!
      return `rank ${x.rank} at ${x.step === 'end' ? 'the end' : `step ${x.step}`} (${r.workload ?? 'mlp'} r${r.repeat})`
    }
    const text = drifted.length
      ? `#${t.index} world size ${d.world_size} (${d.backend}): replica check failed — parameters drifted from rank 0's: ${drifted.map(where).join('; ')}`
      : `#${t.index} world size ${d.world_size} (${d.backend}): replicas agree — every rank's parameters equal rank 0's bit for bit at ${checks} check(s) over ${runs.length} run(s) (${when})`
    out.push({target: t.index, drift: drifted.length > 0, text})
  }
  return out
}
