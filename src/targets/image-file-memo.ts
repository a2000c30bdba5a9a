// What an image holds at a path (the entrypoint's file, read with create + cp + rm: ~150 ms of
// engine calls) kept per image ID. An image ID is the digest of the image's config, which names
// its layers by digest, so the same ID always holds the same files: the memo never goes stale,
// and a rebuilt or re-pulled tag has another ID, so it is read again.

import {createHash, randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {FileHead} from './tar.js'

/** Bump when what is kept (or how cp reads it) changes: old memos are not read. */
const MEMO_FORMAT = 1
/** Memos kept at most; the oldest are removed on a write. */
const MEMO_KEEP = 256

export interface ImageFileMemoKey {
  /** the engine and its platform (`docker linux/amd64`) */
  engine: string
  /** the image's content-addressed ID (sha256:…); anything else is never memoized */
  imageId: string
  /** the paths tried, in order */
  paths: string[]
}

type Stored = {missing: true} | {type: FileHead['type']; mode: number; size: number; head: string}

function memoFile(dir: string, key: ImageFileMemoKey): string | null {
  if (!/^sha256:[0-9a-f]{64}$/.test(key.imageId)) return null
  const digest = createHash('sha256')
    .update(JSON.stringify({format: MEMO_FORMAT, engine: key.engine, image: key.imageId, paths: key.paths}))
    .digest('hex')
  return path.join(dir, `${digest}.json`)
}

/** The memoized answer, or null (none kept, unreadable, or an ID that is not a digest). */
export async function readImageFileMemo(dir: string, key: ImageFileMemoKey): Promise<FileHead | 'missing' | null> {
  const file = memoFile(dir, key)
  if (!file) return null
  try {
    const v = JSON.parse(await fs.readFile(file, 'utf8')) as Stored
    if ('missing' in v) return v.missing === true ? 'missing' : null
    if (!['file', 'symlink', 'directory', 'other'].includes(v.type) || typeof v.mode !== 'number' || typeof v.size !== 'number') return null
    if (typeof v.head !== 'string') return null
    return {type: v.type, mode: v.mode, size: v.size, head: Buffer.from(v.head, 'base64')}
  } catch {
    return null
  }
}

/** Keep an answer (written beside, then renamed); failures are ignored: the memo only saves time. */
export async function writeImageFileMemo(dir: string, key: ImageFileMemoKey, value: FileHead | 'missing'): Promise<void> {
  const file = memoFile(dir, key)
  if (!file) return
  const stored: Stored =
    value === 'missing' ? {missing: true} : {type: value.type, mode: value.mode, size: value.size, head: value.head.toString('base64')}
  try {
    await fs.mkdir(dir, {recursive: true})
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
    try {
      await fs.writeFile(tmp, JSON.stringify(stored))
      await fs.rename(tmp, file)
    } finally {
      await fs.rm(tmp, {force: true})
    }
    const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json'))
    if (names.length <= MEMO_KEEP) return
    const dated = await Promise.all(names.map(async (n) => ({n, t: (await fs.stat(path.join(dir, n)).catch(() => null))?.mtimeMs ?? 0})))
    for (const {n} of dated.sort((a, b) => b.t - a.t).slice(MEMO_KEEP)) await fs.rm(path.join(dir, n), {force: true})
  } catch {
    // a read-only or full cache folder: the next check reads the image again
  }
}
