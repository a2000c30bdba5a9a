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
   * run-cache tag: repeats of one config are cached apart, and so are targets — the same
   * interpreter given twice must run twice, not serve the second target the first one's runs
   */
  cacheTag: string
}

export function planRuns(target: number, repeats: number, seed: number, seeds: number): PlannedRun[] {
  return [
    ...Array.from({length: repeats}, (_, k) => ({
      repeat: k + 1,
      seed,
      label: `repeat ${k + 1}/${repeats}`,
      dir: `t${target}-r${k + 1}`,
      cacheTag: `t${target}-r${k + 1}`,
    })),
    ...Array.from({length: seeds - 1}, (_, k) => ({
      repeat: 0,
      seed: seed + k + 1,
      label: `seed ${seed + k + 1} (${k + 2}/${seeds})`,
      dir: `t${target}-s${seed + k + 1}`,
      cacheTag: `t${target}-seed`,
    })),
  ]
}

/** The seeds an audit trains with: the base seed, then seed+1, … */
export function auditSeeds(seed: number, seeds: number): number[] {
  return Array.from({length: seeds}, (_, k) => seed + k)
}
