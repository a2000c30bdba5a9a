// zod schemas for everything the probe writes (docs/artifacts.md). The probe runs inside an
// untrusted target, so these are the edge: after parsing, the rest of repro trusts the types.

import {z} from 'zod'
import {PROBE_CONFIG_SCHEMA} from '../core/config.js'
import {ENV_NAME_PATTERN, KNOBS, type KnobType} from '../core/knobs.js'
import {WORKLOAD_NAMES, type WorkloadName} from '../core/workloads.js'
import type {Fingerprint, Json} from '../core/types.js'
import {PARSE_ONCE} from './parse-once.js'

const MAX_STRING = 4096
const str = z.string().max(MAX_STRING)
/** Finite numbers; JSON has no NaN, and the probe writes null for non-finite values. */
const num = z.number()
const nullableNum = num.nullable()

export const DTYPES = ['float64', 'float32', 'float16', 'bfloat16', 'int64', 'int32', 'uint8', 'bool'] as const

const entryName = z
  .string()
  .min(1)
  .max(512)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point (they are stripped from untrusted text)
  .regex(/^[^\u0000-\u001f\u007f-\u009f|]+$/, 'entry names must not contain control characters or "|"')

export const traceEntrySchema = z.object({
  name: entryName,
  dtype: z.enum(DTYPES),
  shape: z.array(z.number().int().nonnegative()).max(8),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  nonfinite: z.number().int().nonnegative(),
})

export const traceStepSchema = z.object({
  step: z.union([z.literal('init'), z.number().int().nonnegative()]),
  epoch: z.number().int().nonnegative().nullable(),
  /** notebooks: the code cell (1-based position among all cells) the step began in */
  cell: z.number().int().positive().max(100_000).optional(),
  stored: z.boolean(),
  entries: z.array(traceEntrySchema).max(100_000),
})

/** replay.json written by the probe's replay mode (docs/artifacts.md, Op replay) */
export const replayResultSchema = z.object({
  schema: z.literal('repro.replay-result/1'),
  status: z.enum(['ok', 'error']),
  error: z.object({type: z.string().max(100), message: z.string().max(4096)}).nullable(),
  torch: z.string().max(128).optional(),
  step: z.number().int().nonnegative().nullable().optional(),
  entries: z.array(traceEntrySchema).max(100_000),
  /** kind init: sha256 of the generator state every initializer starts from */
  rng_before: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** the oneDNN primitives the replayed op ran ("convolution:jit:avx512_core"), from oneDNN's verbose log */
  onednn: z.array(z.string().max(200)).max(64).optional(),
})

/** capture.json written by a train run with trace.capture (docs/artifacts.md, Op replay) */
const digests = z
  .array(
    z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .nullable(),
  )
  .max(64)
export const captureSchema = z.object({
  schema: z.literal('repro.capture/1'),
  step: z.number().int().nonnegative(),
  /** absent in a backward-order capture */
  module: z.string().max(400).optional(),
  type: z.string().max(128).optional(),
  training: z.boolean().optional(),
  grad_enabled: z.boolean().optional(),
  /** true: the module's grad_output too (gout/<i>); 'order': every leaf's backward digests, nothing else */
  backward: z.union([z.boolean(), z.literal('order')]).optional(),
  /** backward true: the digest of each positional argument's gradient (null: none) */
  grad_input: digests.optional(),
  /** backward 'order': each leaf module's backward call in firing order */
  backward_order: z
    .array(z.object({module: z.string().max(400), type: z.string().max(128), grad_output: digests, grad_input: digests}))
    .max(100_000)
    .optional(),
  entries: z.array(traceEntrySchema).max(10_000),
})

export const traceSchema = z
  .object({
    schema: z.literal('repro.trace/1'),
    steps: z.array(traceStepSchema).max(1_000_000),
    capture: z.enum(['full', 'boundaries']).optional(),
  })
  .meta({title: 'repro trace', description: 'trace.json written by the probe (schema "repro.trace/1")'})

// A trace holds one entry per tensor per step (~5000 in a probe run of 79 steps), and zod takes
// ~7 µs an entry: ~35 ms a run, paid again for every run an audit reads. plainTrace checks the
// same rules by hand, for steps and entries with nothing but the schema's own keys; whatever it
// does not pass (an invalid trace, or an extra key in a step or entry, which zod would strip) goes
// to zod, which has the last word and the error message. test/unit/artifacts/schemas-trace.test.ts
// holds the two together.
// biome-ignore lint/suspicious/noControlCharactersInRegex: the same rule as entryName above
const ENTRY_NAME = /^[^\u0000-\u001f\u007f-\u009f|]+$/
const SHA256 = /^[0-9a-f]{64}$/
const DTYPE_SET: ReadonlySet<unknown> = new Set(DTYPES)
const isCount = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function keysWithin(o: Record<string, unknown>, allowed: ReadonlySet<string>): boolean {
  for (const k in o) if (!allowed.has(k)) return false
  return true
}

const ENTRY_KEYS: ReadonlySet<string> = new Set(['name', 'dtype', 'shape', 'sha256', 'nonfinite'])
const STEP_KEYS: ReadonlySet<string> = new Set(['step', 'epoch', 'cell', 'stored', 'entries'])

function isPlainEntry(e: unknown): boolean {
  if (!isObject(e) || !keysWithin(e, ENTRY_KEYS)) return false
  const {name, shape, sha256} = e
  if (typeof name !== 'string' || name.length < 1 || name.length > 512 || !ENTRY_NAME.test(name)) return false
  if (!DTYPE_SET.has(e['dtype']) || !isCount(e['nonfinite'])) return false
  if (typeof sha256 !== 'string' || !SHA256.test(sha256)) return false
  if (!Array.isArray(shape) || shape.length > 8) return false
  for (const d of shape) if (!isCount(d)) return false
  return true
}

function isPlainStep(s: unknown): boolean {
  if (!isObject(s) || !keysWithin(s, STEP_KEYS)) return false
  const {step, epoch, cell, entries} = s
  if (step !== 'init' && !isCount(step)) return false
  if (epoch !== null && !isCount(epoch)) return false
  if ('cell' in s && !(Number.isSafeInteger(cell) && (cell as number) >= 1 && (cell as number) <= 100_000)) return false
  if (typeof s['stored'] !== 'boolean' || !Array.isArray(entries) || entries.length > 100_000) return false
  for (const e of entries) if (!isPlainEntry(e)) return false
  return true
}

/**
 * What traceSchema returns for raw, equal, where raw is a valid trace whose steps and entries hold
 * only the schema's keys (top-level ones it drops as zod does: the probe writes `entry_order`);
 * null: ask zod.
 */
export function plainTrace(raw: unknown): TraceFile | null {
  if (!isObject(raw) || raw['schema'] !== 'repro.trace/1') return null
  const {steps, capture} = raw
  if ('capture' in raw && capture !== 'full' && capture !== 'boundaries') return null
  if (!Array.isArray(steps) || steps.length > 1_000_000) return null
  for (const s of steps) if (!isPlainStep(s)) return null
  return {schema: 'repro.trace/1', steps, ...('capture' in raw ? {capture} : {})} as TraceFile
}

/** The zod type of one knob's value, from its row in the knob table. */
function knobValue(t: KnobType): z.ZodType {
  const base =
    t.kind === 'bool'
      ? t.also?.length
        ? z.union([z.boolean(), z.enum(t.also as [string, ...string[]])])
        : z.boolean()
      : t.kind === 'int'
        ? z.number().int().min(t.min).max(t.max)
        : t.kind === 'number'
          ? z.number().min(t.min).max(t.max)
          : t.kind === 'enum'
            ? z.enum(t.choices as [string, ...string[]])
            : z.string().regex(new RegExp(t.pattern))
  return t.nullable ? base.nullable() : base
}

const envName = z.string().max(256).regex(new RegExp(ENV_NAME_PATTERN))

/** knobs in a probe config: every knob of the table, exactly (the host writes it). */
const knobsRequested = z.object({
  ...Object.fromEntries(KNOBS.map((k) => [k.name, knobValue(k.type)])),
  env: z.record(envName, z.string().max(MAX_STRING)),
})

/**
 * run.json knobs_effective: what the probe read back from torch, which may lack a setting
 * (null) or report it in its own words, so only the JSON kind is checked.
 */
const knobsEffective = z.looseObject({
  ...Object.fromEntries(
    KNOBS.map((k) => [
      k.name,
      (k.type.kind === 'bool'
        ? z.union([z.boolean(), str])
        : k.type.kind === 'int'
          ? z.number().int()
          : k.type.kind === 'number'
            ? z.number()
            : str
      )
        .nullable()
        .optional(),
    ]),
  ),
  env: z.record(str, str.nullable()).optional(),
})

export const probeConfigSchema = z
  .object({
    schema: z.literal(PROBE_CONFIG_SCHEMA),
    workload: z.enum(WORKLOAD_NAMES as [WorkloadName, ...WorkloadName[]]),
    data: z.object({file: z.string().min(1).max(256), sha256: z.string().regex(/^([0-9a-f]{64})?$/)}),
    model: z.object({
      hidden: z
        .array(
          z
            .number()
            .int()
            .min(1)
            .max(1 << 20),
        )
        .max(64),
      embedding_dim: z
        .number()
        .int()
        .min(1)
        .max(1 << 16),
      dropout: z.number().min(0).lt(1),
    }),
    train: z.object({
      epochs: z
        .number()
        .int()
        .min(1)
        .max(1 << 20),
      batch_size: z.number().int().min(2),
      lr: z.number().positive(),
      optimizer: z.enum(['adam', 'sgd']),
      seed: z.number().int().min(0),
      val_fraction: z.number().min(0).lt(1),
      drop_last: z.boolean().optional(),
      collective_timeout: z
        .number()
        .int()
        .min(1)
        .max(7 * 24 * 3600)
        .optional(),
    }),
    knobs: knobsRequested,
    trace: z.object({
      enabled: z.boolean(),
      store_steps: z.array(z.number().int().min(0)).nullable(),
      /** op replay: one module's inputs captured at one step, then the run stops */
      capture: z
        .union([
          z.object({step: z.number().int().min(0), module: z.string().min(1).max(400), backward: z.boolean().optional()}),
          z.object({step: z.number().int().min(0), backward: z.literal('order')}),
        ])
        .nullable()
        .optional(),
      /** op replay of a user's module (script mode): the script runs up to that call and replaces it by one on the capture */
      replay: z
        .object({
          step: z.number().int().min(0),
          module: z.string().min(1).max(400),
          capture: z.object({
            file: z.string().min(1).max(255),
            sha256: z.string().regex(/^[0-9a-f]{64}$/),
            meta: z.record(z.string(), z.unknown()),
          }),
          toggle: z.object({mkldnn: z.boolean()}).nullable(),
        })
        .nullable()
        .optional(),
    }),
    /** script mode only: the user's training script, run unchanged under the tracer */
    script: z
      .object({
        /** how it runs: `python path`, `python -m module`, or a notebook's code cells in order (absent in older runs: script) */
        kind: z.enum(['script', 'module', 'notebook']).optional(),
        path: z.string().max(4096).nullable(),
        /** kind module: the dotted name */
        module: z.string().max(256).nullable().optional(),
        /** the project copy's root (paths relative to the config's directory) */
        root: z.string().max(4096).nullable().optional(),
        args: z.array(z.string().max(4096)).max(1000),
        cwd: z.string().max(4096).nullable(),
        max_steps: z.number().int().min(1).max(100_000),
        /** extra sys.path folders: empty since the layout is kept (older runs listed include folders) */
        include: z.array(z.string().max(4096)).max(100),
        observer: z.boolean(),
        /** ranks torchrun starts, rank 0 traced (absent in older runs: 1) */
        nproc: z.number().int().min(1).max(16).optional(),
        /** notebooks: go on past a cell that raises */
        allow_errors: z.boolean().optional(),
        /** the host's digest of the whole project copy: an edited sibling module reruns */
        sha256: z
          .string()
          .regex(/^[0-9a-f]{64}$/)
          .nullable()
          .optional(),
      })
      .optional(),
  })
  .meta({title: 'repro probe config', description: `config.json the host hands the probe (schema "${PROBE_CONFIG_SCHEMA}")`})

export const runSchema = z
  .object({
    schema: z.literal('repro.run/1'),
    probe_version: str,
    status: z.enum(['ok', 'error']),
    /** script mode: missing_file names the path (relative to the project copy's root when inside it), missing_module the module */
    error: z.object({type: str, message: str, path: str.optional(), module: str.optional()}).nullable(),
    knobs_effective: knobsEffective
      .nullable()
      .optional()
      .transform((k) => k ?? {}),
    steps: z.number().int().nonnegative().optional().default(0),
    workload: z
      .enum(WORKLOAD_NAMES as [WorkloadName, ...WorkloadName[]])
      .nullable()
      .optional(),
    compiled: z
      .object({
        graphs: z.number().int().nullable(),
        graph_breaks: z.number().int().nullable(),
        regions: z.array(z.object({kernel: str, pass: str, ops: z.array(str).max(64), modules: z.array(str).max(256)})).max(500),
      })
      .optional(),
    // script mode (the user's own training script)
    /** a run with trace.capture: which module's inputs were captured at which step (op replay) */
    capture: z
      .object({
        step: z.number().int().nonnegative(),
        module: z.string().max(400).optional(),
        backward: z.union([z.boolean(), z.literal('order')]).optional(),
        captured: z.boolean(),
      })
      .nullable()
      .optional(),
    knobs_overridden: z.array(z.string().max(128)).max(100).optional(),
    /** world_size > 1: the ranks and the replica check (every rank's parameters against rank 0's) */
    distributed: z
      .object({
        world_size: z.number().int().min(2).max(16),
        backend: z.enum(['gloo', 'nccl']),
        replicas: z.object({
          checked: z.array(z.union([z.number().int().nonnegative(), z.literal('end')])).max(100_000),
          drift: z
            .object({rank: z.number().int().min(1).max(15), step: z.union([z.number().int().nonnegative(), z.literal('end')])})
            .nullable(),
        }),
      })
      .optional(),
    script: z
      .looseObject({
        path: str.nullable().optional(),
        argv: z.array(str).max(1000).optional(),
        cwd: str.nullable().optional(),
        env: z.record(z.string().max(256), str).optional(),
        steps_recorded: z.number().int().nullable().optional(),
        truncated: z.boolean().nullable().optional(),
        end: str.nullable().optional(),
        kind: z.enum(['script', 'module', 'notebook']).optional(),
        module: str.nullable().optional(),
        /** what one trace step is: an optimizer step, or (no torch.optim optimizer) one top-level backward */
        step_definition: z.enum(['optimizer step', 'backward']).nullable().optional(),
        closures: z
          .looseObject({evaluations: z.number().int().nonnegative(), entries_skipped: z.number().int().nonnegative().optional()})
          .nullable()
          .optional(),
        notebook: z
          .looseObject({
            cells: z.number().int().nonnegative(),
            cells_run: z.number().int().nonnegative(),
            ipython: z.boolean(),
            allow_errors: z.boolean().optional(),
            skipped_magics: z.array(z.object({cell: z.number().int(), line: z.number().int(), magic: str})).max(200),
            errors: z.array(z.object({cell: z.number().int(), first_line: str, error: str})).max(200),
          })
          .nullable()
          .optional(),
        seeded: z.unknown().optional(),
        eval_forwards: z.unknown().optional(),
        observer_check: z
          .looseObject({
            equal: z.boolean().nullable().optional(),
            params: z.number().int().nullable().optional(),
            differing: z.array(str).max(100).optional(),
            untraced_error: str.nullable().optional(),
          })
          .nullable()
          .optional(),
      })
      .nullable()
      .optional(),
    outcome_metric: z.enum(['val_accuracy', 'val_rmse']).nullable().optional(),
    nondeterministic_alerts: z
      .array(z.object({message: str, count: z.number().int().nonnegative()}))
      .max(1000)
      .optional()
      .default([]),
    model: z
      .looseObject({
        module_types: z.record(z.string().max(256), z.string().max(128)).optional(),
        attention_path: z.string().max(64).nullable().optional(),
      })
      .nullable()
      .optional(),
    epochs: z
      .array(
        z.object({
          epoch: z.number().int().nonnegative(),
          train_loss: nullableNum,
          val_loss: nullableNum,
          val_accuracy: nullableNum,
          val_rmse: nullableNum.optional(),
          seconds: num,
          last_step: z.number().int(),
        }),
      )
      .max(10_000)
      .optional()
      .default([]),
    final: z
      // open: a user's script may report its own metrics (report_metric) beside these
      .looseObject({
        val_accuracy: nullableNum,
        val_loss: nullableNum,
        train_loss: nullableNum.optional().default(null),
        val_rmse: nullableNum.optional().default(null),
      })
      .nullable()
      .optional()
      .transform((f) => f ?? {val_accuracy: null, val_loss: null, train_loss: null, val_rmse: null}),
    timings: z.record(str, num).optional().default({}),
  })
  .meta({title: 'repro run', description: 'run.json written by the probe (schema "repro.run/1")'})

const maybe = <T extends z.ZodType>(t: T) => t.nullable().optional()
const text = maybe(str)

/**
 * fingerprint.json, section by section: what the host reads by name is typed, each section may
 * be null (it failed inside the target), and objects stay open for fields repro does not use.
 * parseFingerprint additionally bounds the whole document (depth, sizes).
 */
export const fingerprintSchema = z
  .looseObject({
    schema: z.literal('repro.fingerprint/1'),
    probe_version: str,
    python: maybe(z.looseObject({version: text, implementation: text, compiler: text, executable: text})),
    os: maybe(z.looseObject({system: text, kernel: text, machine: text, distro: text, distro_id: text, distro_version: text, glibc: text})),
    torch: maybe(
      z.looseObject({
        version: text,
        git_version: text,
        debug: maybe(z.boolean()),
        cuda_build: text,
        cudnn_build: text,
        config: maybe(z.looseObject({})),
      }),
    ),
    numpy: maybe(z.looseObject({version: text})),
    cuda: maybe(
      z.looseObject({
        available: maybe(z.boolean()),
        runtime: text,
        cudnn: text,
        driver: text,
        nccl: text,
        devices: maybe(z.array(z.looseObject({index: z.number().int(), name: text, capability: text})).max(64)),
      }),
    ),
    libraries: z.array(z.looseObject({soname: text, path: text, real_path: text, role: text, version: text})).max(5000),
    flags: maybe(z.record(z.string().max(256), z.union([z.boolean(), str, z.number(), z.null()]))),
    threads: maybe(z.looseObject({intra_op: maybe(z.number().int()), inter_op: maybe(z.number().int())})),
    env: maybe(z.record(z.string().max(256), str)),
    distributions: z.array(z.looseObject({name: str, version: text})).max(5000),
    attention: maybe(z.record(z.string().max(256), z.union([z.boolean(), z.null()]))),
    knobs: maybe(z.looseObject({amp: text, compile: maybe(z.boolean()), device: text})),
  })
  .meta({title: 'repro fingerprint', description: 'fingerprint.json written by the probe (schema "repro.fingerprint/1")'})

/**
 * The fingerprint is open-ended JSON; we bound its shape rather than enumerate its fields:
 * depth ≤ 8, strings ≤ 4096 chars, ≤ 5000 keys per object, ≤ 5000 items per array.
 */
export function parseFingerprint(value: unknown): Fingerprint {
  const fp = boundedJson(value, 0, '$')
  if (typeof fp !== 'object' || fp === null || Array.isArray(fp)) throw new Error('fingerprint is not a JSON object')
  if (fp['schema'] !== 'repro.fingerprint/1')
    throw new Error(`fingerprint schema is ${JSON.stringify(fp['schema'])}, expected "repro.fingerprint/1"`)
  const typed = fingerprintSchema.safeParse(fp, PARSE_ONCE)
  if (!typed.success) throw new Error(firstIssue(typed.error))
  return fp
}

function boundedJson(v: unknown, depth: number, path: string): Json {
  if (depth > 8) throw new Error(`${path}: nested deeper than 8 levels`)
  if (v === null || typeof v === 'boolean') return v
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`${path}: not a finite number`)
    return v
  }
  if (typeof v === 'string') {
    if (v.length > MAX_STRING) throw new Error(`${path}: string longer than ${MAX_STRING} characters`)
    return v
  }
  if (Array.isArray(v)) {
    if (v.length > 5000) throw new Error(`${path}: array longer than 5000 items`)
    return v.map((x, i) => boundedJson(x, depth + 1, `${path}[${i}]`))
  }
  if (typeof v === 'object') {
    const keys = Object.keys(v as object)
    if (keys.length > 5000) throw new Error(`${path}: more than 5000 keys`)
    const out: {[k: string]: Json} = {}
    for (const k of keys) {
      if (k.length > 256) throw new Error(`${path}: key longer than 256 characters`)
      out[k] = boundedJson((v as Record<string, unknown>)[k], depth + 1, `${path}.${k.slice(0, 40)}`)
    }
    return out
  }
  throw new Error(`${path}: not JSON`)
}

export type RunFile = z.infer<typeof runSchema>
export type TraceFile = z.infer<typeof traceSchema>

/** Render the first zod issue as one line: `path: message`. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid'
  const path = issue.path.length ? issue.path.map(String).join('.') : '(root)'
  return `${path}: ${issue.message}`
}

/** The published JSON Schemas of the probe's inputs and outputs (schemas/*.schema.json), by file name. */
export function artifactJsonSchemaTexts(): Record<string, string> {
  const json = (schema: z.ZodType) => `${JSON.stringify(z.toJSONSchema(schema, {io: 'input', target: 'draft-2020-12'}), null, 2)}\n`
  return {
    'probe-config.schema.json': json(probeConfigSchema),
    'run.schema.json': json(runSchema),
    'trace.schema.json': json(traceSchema),
    'fingerprint.schema.json': json(fingerprintSchema),
  }
}
