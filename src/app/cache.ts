// The run cache: probe runs keyed by (target identity, probe hash, config hash, host
// identity, repeat), stored as run directories under the user cache directory. Writes are
// atomic (a temp dir renamed into place), so concurrent repro processes never see half an
// entry; the cache is size-bounded with least-recently-used eviction.

import {createHash, randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {timed} from '../env/timings.js'
import {probeRoot} from '../targets/probe-path.js'
import {writeCacheTag} from './out-dir.js'

// capture.*: a run with trace.capture (op replay) also keeps the module inputs it captured
const FILES = [
  'fingerprint.json',
  'run.json',
  'trace.json',
  'tensors.safetensors',
  'stderr.txt',
  'capture.json',
  'capture.safetensors',
] as const
export const DEFAULT_CACHE_MAX_BYTES = 2 * 1024 * 1024 * 1024

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['REPRO_CACHE_DIR']) return path.resolve(env['REPRO_CACHE_DIR'])
  const base = env['XDG_CACHE_HOME'] ? env['XDG_CACHE_HOME'] : path.join(os.homedir(), '.cache')
  return path.join(base, 'repro', 'runs')
}

export function cacheMaxBytes(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env['REPRO_CACHE_MAX_BYTES'])
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_CACHE_MAX_BYTES
}

const probeHashMemo = new Map<string, Promise<string>>()

/**
 * sha256 over every file the probe ships (sources, subpackages and data such as the knob
 * table; not bytecode caches): a changed probe never reuses old runs.
 */
export function probeHash(dir = path.join(probeRoot(), 'repro_probe')): Promise<string> {
  let memo = probeHashMemo.get(dir)
  if (!memo) {
    memo = (async () => {
      const names = (await fs.readdir(dir, {recursive: true, withFileTypes: true}))
        .filter((e) => e.isFile() && !e.name.endsWith('.pyc'))
        .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
        .filter((n) => !n.split(path.sep).includes('__pycache__'))
        .sort()
      // read side by side, hashed in name order
      const contents = await Promise.all(names.map((n) => fs.readFile(path.join(dir, n))))
      const h = createHash('sha256')
      for (const [i, n] of names.entries()) h.update(n).update('\0').update(contents[i]!).update('\0')
      return h.digest('hex')
    })()
    probeHashMemo.set(dir, memo)
  }
  return memo
}

/** JSON with object keys sorted at every depth, so equal values always hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
    return `{${entries.join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

export function cacheKey(parts: Record<string, unknown>): string {
  // Not JSON.stringify(parts, sortedKeys): an array replacer is a key allowlist at every
  // depth, which silently dropped every nested field (and made all targets share one key).
  return createHash('sha256').update(canonicalJson(parts)).digest('hex')
}

export interface TargetMemoDirs {
  imageFiles: string
  pythonDistributions: string
}

export class RunCache {
  constructor(
    readonly dir: string = cacheDir(),
    readonly maxBytes: number = cacheMaxBytes(),
  ) {}

  /**
   * Where the host fingerprint is kept per boot (env/host.ts): inside the cache, so --no-cache
   * measures afresh and a fresh cache starts empty. No COMPLETE marker: eviction passes it by.
   */
  hostMemoDir(): string {
    return path.join(this.dir, '.host-fingerprints')
  }

  /**
   * Where targets keep what they read about themselves between checks, checked again before
   * use: what an image holds at its entrypoint's path, per image ID (targets/image-file-memo.ts),
   * and a local python's installed distributions (targets/python-identity.ts). Like the host
   * memo: inside the cache, so --no-cache reads them afresh.
   */
  targetMemoDirs(): TargetMemoDirs {
    return {imageFiles: path.join(this.dir, '.image-files'), pythonDistributions: path.join(this.dir, '.python-distributions')}
  }

  private entry(key: string): string {
    return path.join(this.dir, key)
  }

  /** Copy a cached run into `outDir`; false when there is no complete entry. */
  restore(key: string, outDir: string): Promise<boolean> {
    return timed('cache restore', key.slice(0, 12), () => this.restoreEntry(key, outDir))
  }

  private async restoreEntry(key: string, outDir: string): Promise<boolean> {
    const src = this.entry(key)
    const complete = await fs.stat(path.join(src, 'COMPLETE')).then(
      () => true,
      () => false,
    )
    if (!complete) return false
    await fs.mkdir(outDir, {recursive: true})
    for (const f of FILES) {
      await fs.copyFile(path.join(src, f), path.join(outDir, f)).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e
      })
    }
    // Touch for LRU eviction.
    const now = new Date()
    await fs.utimes(path.join(src, 'COMPLETE'), now, now).catch(() => undefined)
    return true
  }

  /** Store the artifacts of `runDir` under `key`: write a temp dir, then rename it into place. */
  async store(key: string, runDir: string): Promise<void> {
    await fs.mkdir(this.dir, {recursive: true})
    // tagged, so backup tools and a project copy (script-project.ts) that happens to hold it skip it
    await writeCacheTag(this.dir, 'the run cache')
    const tmp = path.join(this.dir, `.tmp-${key.slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`)
    await fs.mkdir(tmp)
    try {
      for (const f of FILES) {
        await fs.copyFile(path.join(runDir, f), path.join(tmp, f)).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e
        })
      }
      await fs.writeFile(path.join(tmp, 'COMPLETE'), new Date().toISOString())
      try {
        await fs.rename(tmp, this.entry(key))
      } catch (e) {
        // Another process stored the same key first: theirs is as good as ours.
        if (!['ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e
      }
    } finally {
      await fs.rm(tmp, {recursive: true, force: true})
    }
    await this.evict()
  }

  /** Remove least-recently-used entries until the cache fits its size bound. */
  async evict(): Promise<number> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[])
    const entries: {dir: string; bytes: number; used: number}[] = []
    for (const n of names) {
      if (n.startsWith('.tmp-')) continue
      const dir = path.join(this.dir, n)
      const marker = await fs.stat(path.join(dir, 'COMPLETE')).catch(() => null)
      if (!marker) continue
      let bytes = 0
      for (const f of await fs.readdir(dir).catch(() => [] as string[]))
        bytes += (await fs.stat(path.join(dir, f)).catch(() => null))?.size ?? 0
      entries.push({dir, bytes, used: marker.mtimeMs})
    }
    let total = entries.reduce((s, e) => s + e.bytes, 0)
    let removed = 0
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break
      await fs.rm(e.dir, {recursive: true, force: true})
      total -= e.bytes
      removed++
    }
    return removed
  }
}
