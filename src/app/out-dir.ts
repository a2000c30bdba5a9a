// The output directory a command writes into: created if missing, refused (one line, exit 2)
// when it exists as something other than a directory or cannot be created.

import {promises as fs} from 'node:fs'
import {ReproError} from '../errors.js'

export async function ensureOutDir(dir: string): Promise<void> {
  const stat = await fs.stat(dir).catch(() => null)
  if (stat && !stat.isDirectory())
    throw new ReproError(`${dir} exists and is not a directory`, {subject: '--out', hint: 'pass --out a directory path (new or existing)'})
  try {
    await fs.mkdir(dir, {recursive: true})
  } catch (e) {
    throw new ReproError(`cannot create ${dir} (${(e as NodeJS.ErrnoException).code ?? 'error'})`, {
      subject: '--out',
      hint: 'pass --out a writable directory',
    })
  }
}
