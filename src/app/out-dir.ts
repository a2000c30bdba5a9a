// The output directory a command writes into: created if missing, refused (one line, exit 2)
// when it exists as something other than a directory or cannot be created, and tagged with a
// CACHEDIR.TAG so backup tools and repro's own project copy (script-project.ts) skip it.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'

/** The Cache Directory Tagging signature (https://bford.info/cachedir/). */
export const CACHEDIR_TAG_SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55'

export async function ensureOutDir(dir: string, opts: {resume?: boolean} = {}): Promise<void> {
  const stat = await fs.stat(dir).catch(() => null)
  // --resume continues an earlier audit's --out: there must be one (a new folder has nothing to resume)
  if (opts.resume && !stat)
    throw new ReproError(`--out ${dir} does not exist, so there is no earlier audit to resume`, {
      subject: '--resume',
      hint: "pass the earlier audit's --out DIR, or drop --resume to start a new audit",
    })
  if (stat && !stat.isDirectory())
    throw new ReproError(`${dir} exists and is not a directory`, {subject: '--out', hint: 'pass --out a directory path (new or existing)'})
  try {
    await fs.mkdir(dir, {recursive: true})
    await writeCacheTag(dir, 'an output folder')
  } catch (e) {
    throw new ReproError(`cannot create ${dir} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
      subject: '--out',
      hint: 'pass --out a writable directory',
    })
  }
}

/** Tag `dir` as repro's output or cache (unless it already carries a valid tag). */
export async function writeCacheTag(dir: string, what: string): Promise<void> {
  if (await hasCacheTag(dir)) return
  await fs.writeFile(
    path.join(dir, 'CACHEDIR.TAG'),
    `${CACHEDIR_TAG_SIGNATURE}\n# This file is a cache directory tag created by repro (${what}).\n# For information about cache directory tags, see: https://bford.info/cachedir/\n`,
  )
}

/** `dir` holds a CACHEDIR.TAG that starts with the signature. */
export async function hasCacheTag(dir: string): Promise<boolean> {
  const fh = await fs.open(path.join(dir, 'CACHEDIR.TAG'), 'r').catch(() => null)
  if (!fh) return false
  try {
    const buf = Buffer.alloc(CACHEDIR_TAG_SIGNATURE.length)
    const {bytesRead} = await fh.read(buf, 0, buf.length, 0)
    return bytesRead === buf.length && buf.toString('latin1') === CACHEDIR_TAG_SIGNATURE
  } finally {
    await fh.close()
  }
}
