// The ML repo's repro configuration: `repro.config.json`, or a `repro` key in package.json.
// Validated with zod; every problem is one line naming the file, the field and the fix.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {z} from 'zod'
import {DEFAULT_POLICY, type Policy} from '../core/policy.js'
import {WORKLOAD_NAMES} from '../core/workloads.js'
import {ReproError} from '../errors.js'
import {PARSE_ONCE} from '../artifacts/parse-once.js'

const target = z.union([z.strictObject({image: z.string().min(1).max(512)}), z.strictObject({python: z.string().min(1).max(4096)})])

export const configSchema = z.strictObject({
  $schema: z.string().optional(),
  targets: z.array(target).min(1).max(32),
  set: z.array(z.string().max(512)).max(100).default([]),
  repeats: z.number().int().min(1).max(50).default(2),
  seeds: z.number().int().min(1).max(100).default(1),
  seed: z.number().int().min(0).default(1234),
  epochs: z.number().int().min(1).max(1000).default(3),
  /** default: each workload's own */
  rows: z.number().int().min(32).max(10_000_000).optional(),
  workloads: z
    .array(z.enum(['all', ...WORKLOAD_NAMES]))
    .min(1)
    .max(16)
    .default(['mlp']),
  data: z.strictObject({csv: z.string().min(1), label: z.string().min(1)}).optional(),
  engine: z.enum(['auto', 'docker', 'podman']).default('auto'),
  device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  memory: z
    .string()
    .regex(/^\d+[bkmg]?$/i)
    .default('4g'),
  cpus: z
    .string()
    .regex(/^\d+(\.\d+)?$/)
    .default('2'),
  timeout: z.number().int().min(1).default(600),
  /**
   * the repo's own training script (or notebook, or module) instead of the built-in workloads;
   * paths relative to the config's folder, which is also the default working directory
   */
  script: z
    .strictObject({
      path: z.string().min(1).max(4096).optional(),
      module: z.string().min(1).max(256).optional(),
      /** default: the nearest folder at or above the script's holding repro.config.json or .git */
      project: z.string().min(1).max(4096).optional(),
      cwd: z.string().min(1).max(4096).optional(),
      args: z.array(z.string().max(4096)).max(1000).default([]),
      /** files or folders added to the project copy (e.g. gitignored data) */
      include: z.array(z.string().min(1).max(4096)).max(100).default([]),
      max_steps: z.number().int().min(1).max(100_000).default(30),
      /** ranks under torchrun (rank 0 traced, the others' final parameters checked against it) */
      nproc: z.number().int().min(1).max(16).default(1),
      observer: z.boolean().default(false),
      allow_errors: z.boolean().default(false),
    })
    .refine((s) => (s.path === undefined) !== (s.module === undefined), {message: 'give either path (a script or notebook) or module'})
    .optional(),
  baseline: z.string().min(1).default('reports/baseline.json'),
  policy: z
    .strictObject({
      accuracy_tolerance: z.number().min(0).max(1),
      require_reproducible: z.boolean(),
      require_bitwise_baseline: z.boolean(),
      fail_on_changes: z.array(z.string().max(256)).max(500),
      allow_changes: z.array(z.string().max(256)).max(500),
      allow_patch_bumps: z.boolean(),
      rmse_tolerance: z.number().min(0),
      workloads: z.partialRecord(
        z.enum(WORKLOAD_NAMES),
        z
          .strictObject({
            accuracy_tolerance: z.number().min(0).max(1),
            require_reproducible: z.boolean(),
            require_bitwise_baseline: z.boolean(),
            rmse_tolerance: z.number().min(0),
          })
          .partial(),
      ),
    })
    .partial()
    .default({}),
})

export type CheckConfig = Omit<z.infer<typeof configSchema>, 'policy'> & {policy: Policy}

export interface LoadedConfig {
  config: CheckConfig
  /** the file it came from */
  file: string
  /** paths in the config are relative to this directory */
  dir: string
}

const HINT = 'see docs/ci.md for the fields of repro.config.json'

export async function loadCheckConfig(explicit: string | undefined, cwd = process.cwd()): Promise<LoadedConfig> {
  let file: string
  let raw: unknown
  if (explicit) {
    file = path.resolve(cwd, explicit)
    raw = await readJson(file)
  } else if (await exists(path.join(cwd, 'repro.config.json'))) {
    file = path.join(cwd, 'repro.config.json')
    raw = await readJson(file)
  } else if (await exists(path.join(cwd, 'package.json'))) {
    file = path.join(cwd, 'package.json')
    const pkg = (await readJson(file)) as Record<string, unknown>
    if (!pkg || typeof pkg !== 'object' || !('repro' in pkg)) throw noConfig(cwd)
    raw = pkg['repro']
  } else {
    throw noConfig(cwd)
  }
  const parsed = configSchema.safeParse(raw, PARSE_ONCE)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const where = issue.path.length ? issue.path.map(String).join('.') : '(top level)'
    throw new ReproError(`${where}: ${issue.message}`, {subject: path.relative(cwd, file) || file, hint: HINT})
  }
  const config = {...parsed.data, policy: {...DEFAULT_POLICY, ...parsed.data.policy}}
  return {config, file, dir: path.dirname(file)}
}

function noConfig(cwd: string): ReproError {
  return new ReproError(`no repro.config.json (and no "repro" key in package.json) in ${cwd}`, {
    subject: 'check',
    hint: `create one (${HINT}), or pass --config FILE`,
  })
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    (s) => s.isFile(),
    () => false,
  )
}

async function readJson(file: string): Promise<unknown> {
  let text: string
  try {
    const stat = await fs.stat(file)
    if (stat.size > 1024 * 1024) throw new ReproError('is larger than 1 MiB', {subject: file, hint: HINT})
    text = await fs.readFile(file, 'utf8')
  } catch (e) {
    if (e instanceof ReproError) throw e
    throw new ReproError('cannot be read', {subject: file, hint: 'pass --config FILE with a readable file'})
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new ReproError(`is not valid JSON (${(e as Error).message.slice(0, 120)})`, {subject: file, hint: HINT})
  }
}
