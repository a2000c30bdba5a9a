// zod schemas for everything the probe writes (docs/artifacts.md). The probe runs inside an
// untrusted target, so these are the edge: after parsing, the rest of repro trusts the types.

import {z} from 'zod'
import type {Fingerprint, Json} from '../core/types.js'

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
  stored: z.boolean(),
  entries: z.array(traceEntrySchema).max(100_000),
})

export const traceSchema = z.object({
  schema: z.literal('repro.trace/1'),
  steps: z.array(traceStepSchema).max(1_000_000),
})

const knobsEffective = z.looseObject({
  device: str.optional(),
  threads: z.number().int().nullable().optional(),
  interop_threads: z.number().int().nullable().optional(),
  deterministic: z.boolean().optional(),
  cudnn_benchmark: z.boolean().optional(),
  tf32_matmul: z.boolean().nullable().optional(),
  tf32_cudnn: z.boolean().nullable().optional(),
  float32_matmul_precision: str.nullable().optional(),
  amp: str.optional(),
  compile: z.boolean().optional(),
  env: z.record(str, str).optional(),
})

export const runSchema = z.object({
  schema: z.literal('repro.run/1'),
  probe_version: str,
  status: z.enum(['ok', 'error']),
  error: z.object({type: str, message: str}).nullable(),
  knobs_effective: knobsEffective
    .nullable()
    .optional()
    .transform((k) => k ?? {}),
  steps: z.number().int().nonnegative().optional().default(0),
  model: z
    .looseObject({module_types: z.record(z.string().max(256), z.string().max(128)).optional()})
    .nullable()
    .optional(),
  epochs: z
    .array(
      z.object({
        epoch: z.number().int().nonnegative(),
        train_loss: nullableNum,
        val_loss: nullableNum,
        val_accuracy: nullableNum,
        seconds: num,
        last_step: z.number().int(),
      }),
    )
    .max(10_000)
    .optional()
    .default([]),
  final: z
    .object({val_accuracy: nullableNum, val_loss: nullableNum, train_loss: nullableNum.optional().default(null)})
    .nullable()
    .optional()
    .transform((f) => f ?? {val_accuracy: null, val_loss: null, train_loss: null}),
  timings: z.record(str, num).optional().default({}),
})

/**
 * The fingerprint is open-ended JSON; we bound its shape rather than enumerate its fields:
 * depth ≤ 8, strings ≤ 4096 chars, ≤ 5000 keys per object, ≤ 5000 items per array.
 */
export function parseFingerprint(value: unknown): Fingerprint {
  const fp = boundedJson(value, 0, '$')
  if (typeof fp !== 'object' || fp === null || Array.isArray(fp)) throw new Error('fingerprint is not a JSON object')
  if (fp['schema'] !== 'repro.fingerprint/1')
    throw new Error(`fingerprint schema is ${JSON.stringify(fp['schema'])}, expected "repro.fingerprint/1"`)
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
