// The zod schema of a report.json (AuditReport) read back from disk: what the renderers read
// is type-checked and size-capped; objects stay open (z.looseObject) so newer fields pass
// through. Numbers that JSON cannot hold arrive as "Infinity"/"-Infinity"/"NaN" (json.ts)
// and become numbers again here. schemas/report.schema.json is generated from this file.

import {z} from 'zod'
import {REPORT_SCHEMA} from '../core/report.js'

/** Longest string a renderer accepts from a report file (fingerprint values are ≤ 4 KiB). */
export const MAX_STRING = 16 * 1024
const MAX_ITEMS = 100_000

const str = (max = MAX_STRING) => z.string().max(max)
const list = <T extends z.ZodType>(item: T, max = MAX_ITEMS) => z.array(item).max(max)

/** A number as written by json.ts: finite, or one of the three strings that stand for the others. */
const num = z
  .union([z.number(), z.enum(['Infinity', '-Infinity', 'NaN'])])
  .transform((v) => (typeof v === 'number' ? v : Number(v)))
  .meta({id: 'number', description: 'a number; non-finite values are written as "Infinity", "-Infinity" or "NaN"'})
const numOrNull = num.nullable()

/** A training step: 'init' or the step number. */
const step = z.union([z.number(), str(64)]).meta({id: 'step', description: "a training step: 'init' or the step number"})
const scalar = z.union([str(), z.number(), z.boolean(), z.null()]).meta({id: 'scalar'})

const epochOutcome = z.looseObject({
  epoch: z.number(),
  train_loss: numOrNull,
  val_loss: numOrNull,
  val_accuracy: numOrNull,
  seconds: num,
  last_step: z.number(),
})

const runRecord = z.looseObject({
  repeat: z.number(),
  dir: str(),
  seconds: num,
  cached: z.boolean().optional(),
  resumed: z.boolean().optional(),
  final: z.looseObject({val_accuracy: numOrNull, val_loss: numOrNull, train_loss: numOrNull, val_rmse: numOrNull.optional()}),
  epochs: list(epochOutcome),
  knobs_effective: z.record(str(256), z.unknown()),
  timings: z.record(str(256), num),
  workload: str(64).optional(),
  alerts: list(z.looseObject({message: str(), count: z.number()}), 1000).optional(),
  attention_path: str(64).nullable().optional(),
  script: z.looseObject({}).nullable().optional(),
  knobs_overridden: list(str(128), 100).optional(),
  metrics: z.record(str(128), num).optional(),
  distributed: z
    .looseObject({
      world_size: z.number(),
      backend: str(16),
      replicas: z.looseObject({
        checked: list(z.union([z.number(), str(8)]), 100_000),
        drift: z.looseObject({rank: z.number(), step: z.union([z.number(), str(8)])}).nullable(),
      }),
    })
    .optional(),
  compiled: z
    .looseObject({
      graphs: z.number().nullable(),
      graph_breaks: z.number().nullable(),
      regions: list(z.looseObject({kernel: str(256), pass: str(32), ops: list(str(128), 64), modules: list(str(256), 256)}), 500),
    })
    .optional(),
})

const traceDigest = z.looseObject({
  root: z.string().regex(/^[0-9a-f]{64}$/),
  steps: list(z.looseObject({step, root: z.string().regex(/^[0-9a-f]{16}$/)})),
})

const targetRecord = z.looseObject({
  index: z.number(),
  name: str(),
  kind: str(256),
  role: z.enum(['target', 'variant']),
  knobs_requested: z.looseObject({}),
  identity: z.looseObject({reference: str(), details: z.record(str(256), scalar)}).nullable(),
  status: z.enum(['ok', 'error']),
  error: z.looseObject({message: str(), hint: str(), line: str()}).nullable(),
  errors: list(z.looseObject({workload: str(64), message: str(), hint: str(), line: str()}), 100).optional(),
  runs: list(runRecord),
  // Re-validated with the artifact bounds (parseFingerprint) wherever it is used.
  fingerprint: z.record(str(256), z.unknown()).optional(),
  trace_digest: traceDigest.optional(),
  trace_digests: z.record(str(64), traceDigest).optional(),
})

const firstDivergence = z.looseObject({step, entry: str(), index_in_step: z.number(), kind: str(64), phase: str(64)})

const pairSide = z.looseObject({target: z.number(), repeat: z.number(), name: str()})

const fingerprintRow = z.looseObject({
  group: str(64),
  path: str(),
  // absent = the path does not exist on that side
  a: scalar.optional(),
  b: scalar.optional(),
  changed: z.boolean(),
  change: z.enum(['added', 'removed', 'changed', 'same']),
  text: list(z.looseObject({value: str(), added: z.boolean().optional(), removed: z.boolean().optional()}), 10_000).optional(),
})

const pairRecord = z.looseObject({
  workload: str(64).optional(),
  role: z.enum(['repeat', 'cross', 'variant']),
  a: pairSide,
  b: pairSide,
  divergence: z.looseObject({
    bitwise_identical: z.boolean(),
    first_divergence: firstDivergence.nullable(),
    counts: z.looseObject({
      entries: z.number(),
      identical: z.number(),
      differing: z.number(),
      differing_with_values: z.number(),
      beyond_tolerance: z.number(),
    }),
    worst: list(z.looseObject({name: str(), phase: str(64), step, max_abs: num, rel_l2: num})),
    map: list(z.looseObject({name: str(), phase: str(64), step, max_abs: num})).optional(),
  }),
  outcome: z.looseObject({
    val_accuracy_a: numOrNull,
    val_accuracy_b: numOrNull,
    accuracy_delta: numOrNull,
    val_loss_delta: numOrNull,
    val_rmse_a: numOrNull.optional(),
    val_rmse_b: numOrNull.optional(),
    rmse_delta: numOrNull.optional(),
  }),
  fingerprint_changes: list(fingerprintRow),
  fingerprint_changed: z.number(),
})

const stat = z.looseObject({n: z.number(), mean: numOrNull, sd: numOrNull})
const stepEntry = z.looseObject({step, entry: str()})

const where = z.looseObject({phase: str(64), module_type: str(256).nullable(), step, entry: str()})

const attribution = z.looseObject({
  noise_floor: list(
    z.looseObject({
      target: z.number(),
      name: str(),
      repeats: z.number(),
      bitwise: z.boolean(),
      differing_entries: z.number(),
      spread: list(z.looseObject({name: str(), max_abs: num})),
    }),
  ),
  seeds: z
    .looseObject({
      seeds: list(z.number()),
      metric: z.enum(['val_accuracy', 'val_rmse']).optional(),
      per_target: list(z.looseObject({target: z.number(), name: str(), accuracy: stat, loss: stat})),
      differences: list(
        z.looseObject({
          a: z.number(),
          b: z.number(),
          diff: numOrNull,
          ci95: z.tuple([num, num]).nullable(),
          significant: z.boolean(),
          sentence: str(),
        }),
      ),
    })
    .nullable(),
  experiments: list(
    z.looseObject({
      id: str(256),
      kind: z.enum(['knob', 'replay']).optional(),
      op: str(256).optional(),
      toggles: list(
        z.looseObject({
          toggle: str(256),
          outcome: z.enum(['bitwise', 'closer', 'unchanged', 'unavailable', 'failed']),
          max_abs: z.number().nullable(),
        }),
      ).optional(),
      onednn: z.object({a: list(str(200)), b: list(str(200))}).optional(),
      knobs: list(z.looseObject({name: str(256), from: z.unknown(), to: z.unknown()})),
      target: z.number(),
      against: z.number(),
      outcome: z.enum(['disappears', 'moves-later', 'stays', 'failed', 'localized', 'cleared', 'inputs-differ', 'not-faithful']),
      first_divergence_before: stepEntry.nullable(),
      first_divergence_after: stepEntry.nullable(),
      note: str(),
    }),
  ),
  where: where.nullable(),
  residual: where.nullable().optional(),
  suspects: list(
    z.looseObject({
      rank: z.number(),
      kind: z.enum(['knob', 'library', 'nondeterminism', 'seed-variance']),
      name: str(),
      a: str().nullable(),
      b: str().nullable(),
      confidence: z.enum(['high', 'medium', 'low']),
      evidence: str(),
      explanation: str().nullable(),
      source: str().nullable(),
    }),
  ),
  unexercised: list(z.looseObject({name: str(256), a: str(), b: str(), note: str()}), 100).optional(),
  explain_seconds: z.looseObject({zoom: z.number(), knob_reruns: z.number(), replays: z.number()}).optional(),
})

const verdict = z.looseObject({
  status: z.enum(['reproducible', 'drift', 'error']),
  exit_code: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  headline: str(),
})

export const reportSchema = z
  .looseObject({
    schema: z.literal(REPORT_SCHEMA),
    tool: z.looseObject({name: z.literal('repro'), version: str(256)}),
    created: str(256),
    command: str(),
    host: z.unknown(),
    git: z.unknown(),
    settings: z.looseObject({
      repeats: z.number(),
      seed: z.number(),
      epochs: z.number(),
      data_source: str(),
      data_sha256: str(256),
      out_dir: str(),
      workloads: list(str(64), 64).optional(),
    }),
    targets: list(targetRecord, 10_000),
    comparisons: list(pairRecord, 10_000),
    attribution: attribution.optional(),
    resume: z
      .looseObject({
        out_dir: str(),
        planned: z.number(),
        resumed: z.number(),
        reran: list(z.looseObject({dir: str(), reason: str()}), 100_000),
        reruns: z.looseObject({resumed: z.number(), ran: z.number()}).optional(),
      })
      .optional(),
    by_workload: list(
      z.looseObject({
        workload: str(64),
        outcome_metric: z.enum(['val_accuracy', 'val_rmse']),
        verdict,
        attribution: attribution.optional(),
      }),
      64,
    ).optional(),
    verdict,
  })
  .meta({
    title: 'repro report',
    description: `report.json written by repro audit and repro compare (schema "${REPORT_SCHEMA}")`,
  })

/** The published JSON Schema (schemas/report.schema.json): the file as written, before numbers are restored. */
export function reportJsonSchemaText(): string {
  return `${JSON.stringify(z.toJSONSchema(reportSchema, {io: 'input', target: 'draft-2020-12'}), null, 2)}\n`
}
