// Small questions about paths on the host, answered without throwing.

import {promises as fs} from 'node:fs'

/** Anything is at `p` (a dangling symlink counts: lstat). */
export async function exists(p: string): Promise<boolean> {
  return fs.lstat(p).then(
    () => true,
    () => false,
  )
}

/** `p` is a regular file, following links. */
export async function isFile(p: string): Promise<boolean> {
  return fs.stat(p).then(
    (s) => s.isFile(),
    () => false,
  )
}
