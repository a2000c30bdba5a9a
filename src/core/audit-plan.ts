// The plan stage, pure: which probe runs each target gets — its repeats with the base seed,
// then one run per extra seed — and where each run's directory goes.

export interface PlannedRun {
  /** 1-based repeat with the base seed; 0 for an extra-seed run */
  repeat: number
  seed: number
  /** progress label: `repeat 1/2`, `seed 1235 (2/3)` */
  label: string
  /** run directory name inside the audit's output directory */
  dir: string
  /**
   * run-cache tag: repeats of one config are cached apart, and so are occurrences of one target
   * in an audit — the same interpreter given twice must run twice, not serve the second target
   * the first one's runs. Not the target's position: an image's runs are reused by the next
   * audit whichever position it has there (`--image a --image b`, then `--image b`).
   */
  cacheTag: string
}

/**
 * Which occurrence of its target each target of an audit is (1-based): targets with the same
 * `identity` (engine and name as given, and knobs) count up in order; others are 1.
 */
export function targetOccurrences(identities: string[]): number[] {
  const seen = new Map<string, number>()
  return identities.map((id) => {
    const n = (seen.get(id) ?? 0) + 1
    seen.set(id, n)
    return n
  })
}

/** `occurrence`: which occurrence of its target this one is (targetOccurrences); 1 by default. */
export function planRuns(target: number, repeats: number, seed: number, seeds: number, occurrence = 1): PlannedRun[] {
  return [
    ...Array.from({length: repeats}, (_, k) => ({
      repeat: k + 1,
      seed,
      label: `repeat ${k + 1}/${repeats}`,
      dir: `t${target}-r${k + 1}`,
      cacheTag: `o${occurrence}-r${k + 1}`,
    })),
    ...Array.from({length: seeds - 1}, (_, k) => ({
      repeat: 0,
      seed: seed + k + 1,
      label: `seed ${seed + k + 1} (${k + 2}/${seeds})`,
      dir: `t${target}-s${seed + k + 1}`,
      cacheTag: `o${occurrence}-seed`,
    })),
  ]
}

/** The seeds an audit trains with: the base seed, then seed+1, … */
export function auditSeeds(seed: number, seeds: number): number[] {
  return Array.from({length: seeds}, (_, k) => seed + k)
}
