// A target that serves recorded probe runs instead of running the probe: run directories
// recorded from real targets (fixtures/runs/*, scripts/record-runs.mjs), looked up by the
// probe config they were made with (knobs, seed, stored steps, data). The audit pipeline,
// attribution and every renderer can then be tested without torch or an engine. Not op replay:
// nothing is recomputed; a config with no recording is an error, never a guess.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {ProbeJob, ProbeOutcome, Target, TargetIdentity} from './target.js'

const ARTIFACTS = ['fingerprint.json', 'run.json', 'trace.json', 'tensors.safetensors'] as const

interface Recording {
  dir: string
  key: string
  seconds: number
}

/** What identifies a run: its probe config without the data file's name (the sha256 stays). */
export function recordingKey(config: Record<string, unknown>): string {
  const data = (config['data'] ?? {}) as Record<string, unknown>
  // runs recorded before workloads existed are the mlp's
  return canonical({workload: 'mlp', ...config, data: {sha256: data['sha256'] ?? null}})
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}

export class RecordedTarget implements Target {
  readonly kind: TargetIdentity['kind']
  private served = new Map<string, number>()

  private constructor(
    readonly name: string,
    private readonly identity: TargetIdentity,
    private readonly recordings: Recording[],
  ) {
    this.kind = identity.kind
  }

  /** The recordings of target `name` among the run directories under `root`. */
  static async load(root: string, name: string): Promise<RecordedTarget> {
    const recordings: Recording[] = []
    let identity: TargetIdentity | null = null
    for (const entry of (await fs.readdir(root, {withFileTypes: true}))
      .filter((e) => e.isDirectory())
      .sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const dir = path.join(root, entry.name)
      const target = await readJson(path.join(dir, 'target.json'))
      if (!target || target['name'] !== name) continue
      const config = await readJson(path.join(dir, 'inputs', 'config.json'))
      const run = await readJson(path.join(dir, 'run.json'))
      if (!config || !run) continue
      identity ??= target['identity'] as TargetIdentity
      const seconds = Number(((run['timings'] ?? {}) as Record<string, unknown>)['total_seconds'] ?? 0)
      recordings.push({dir, key: recordingKey(config), seconds})
    }
    if (!identity) throw new Error(`no recorded runs of ${name} under ${root}`)
    return new RecordedTarget(name, identity, recordings)
  }

  async identify(): Promise<TargetIdentity> {
    return this.identity
  }

  async cacheIdentity(): Promise<Record<string, unknown>> {
    return {kind: 'recorded', name: this.name, recordings: this.recordings.map((r) => r.dir)}
  }

  /** Copy the recording made with this config; several with one config are served in turn (recorded repeats). */
  async runProbeImpl(job: ProbeJob): Promise<ProbeOutcome> {
    const config = (await readJson(path.join(job.inputDir, 'config.json'))) ?? {}
    const key = recordingKey(config)
    const matches = this.recordings.filter((r) => r.key === key)
    if (matches.length === 0) {
      return {
        kind: 'exited',
        exitCode: 2,
        seconds: 0,
        stderrTail: `no recorded run of ${this.name} for this config (knobs ${canonical(config['knobs'])})\n`,
      }
    }
    const n = this.served.get(key) ?? 0
    this.served.set(key, n + 1)
    const rec = matches[n % matches.length]!
    for (const f of ARTIFACTS) await fs.copyFile(path.join(rec.dir, f), path.join(job.outDir, f)).catch(() => undefined)
    const stderrTail = await fs.readFile(path.join(rec.dir, 'stderr.txt'), 'utf8').catch(() => '')
    return {kind: 'exited', exitCode: 0, seconds: rec.seconds, stderrTail}
  }
}

async function readJson(file: string): Promise<Record<string, unknown> | null> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>
  } catch {
    return null
  }
}
