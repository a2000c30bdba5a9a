// The audit's inputs and what its stages hand each other (plan → run → compare → attribute →
// report), in one place so no stage imports another's module for a type.

import type {ProbeConfig} from '../core/config.js'
import type {TargetRecord} from '../core/report.js'
import type {UpdateReplayPlan} from '../core/replay.js'
import type {CaptureSpec} from '../core/config.js'
import type {Knobs, RunArtifacts, RunOutcome, StoredValues, TensorValues} from '../core/types.js'
import type {WorkloadData, WorkloadName} from '../core/workloads.js'
import type {Target} from '../targets/target.js'
import type {RunCache} from './cache.js'
import type {ProbeRunRequest} from './execute.js'
import type {ScriptSpec} from './script-inputs.js'
import type {Progress} from './progress.js'

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
  /** train every target with this many seeds (seed, seed+1, …); the first also gets the repeats */
  seeds: number
  /** counterfactual reruns when drift is found; 0 turns explaining off */
  explainBudget: number
  /** steps whose values are stored (null: the probe's default set) */
  storeSteps: number[] | null
  /** targets run concurrently (CPU targets; GPU targets are serialized per device) */
  jobs: number
  /** reuse and store probe runs; null with --no-cache */
  cache: RunCache | null
  epochs: number
  /** the workloads every target trains, in report order (default: the mlp alone); 'script' runs `script` */
  workloads: AuditWorkload[]
  /** the user's training script (with workloads ['script']) */
  script?: ScriptSpec
  /** each workload's data (the mlp's may be a user CSV) */
  data: Partial<Record<WorkloadName, WorkloadData>>
  timeoutMs: number
  outDir: string
  /** --resume: runs of the collect stage that --out already holds, complete and made from the same inputs, are taken as they are */
  resume?: boolean
  command: string
  progress: Progress
}

/** What the run stage collected for one workload: a record per target, and the artifacts of those that ran. */
export interface Collected {
  records: TargetRecord[]
  /** per target index: its repeats' artifacts (base seed), in repeat order */
  runs: Map<number, RunArtifacts[]>
  /** per target index: outcomes of the extra-seed runs */
  seedOutcomes: Map<number, RunOutcome[]>
  /** per target index: the probe config its runs used */
  configs: Map<number, ProbeConfig>
}

/** What the run stage collected for every workload (the target records are shared). */
export interface CollectedAll {
  records: TargetRecord[]
  byWorkload: Map<AuditWorkload, Collected>
}

/** A built-in workload, or the user's own training script. */
export type AuditWorkload = WorkloadName | 'script'

/** How the attribute stage reruns a target (zoom, counterfactual knobs): the audit's own settings. */
export interface Rerunner {
  rerun(
    target: number,
    change: {knobs?: Knobs; storeSteps?: number[]; capture?: CaptureSpec},
    label: string,
    dir: string,
  ): Promise<{artifacts: RunArtifacts; seconds: number; outDir?: string}>
  /** replay one module's forward in a target on a capture's bytes (op replay); knobs default to the target's */
  replayForward(
    target: number,
    req: {
      kind: 'forward' | 'backward' | 'init'
      captureDir?: string
      step?: number
      module?: string
      knobs?: Knobs
      toggle: {mkldnn: boolean} | null
    },
    dir: string,
  ): Promise<{outputs: Record<string, string>; values: StoredValues; seconds: number; rng_before?: string; onednn?: string[]}>
  /** the target can run an op replay (a recorded target serves recorded runs only) */
  canReplay(target: number): boolean
  /** replay one update of a target's run on the given input values (op replay) */
  replay(
    target: number,
    plan: UpdateReplayPlan,
    inputs: Map<string, TensorValues>,
    dir: string,
    /** the knobs of the run being reproduced (a counterfactual rerun's); default: the target's */
    knobs?: Knobs,
  ): Promise<{outputs: Record<string, string>; seconds: number}>
  progress: Progress
}

export type CacheFor = (tag: string) => ProbeRunRequest['cache']
