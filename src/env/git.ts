// The git state of the directory repro runs in, stamped into every record (simple-git).

import path from 'node:path'
import {simpleGit} from 'simple-git'

export interface GitState {
  repository: boolean
  commit: string | null
  branch: string | null
  dirty: boolean | null
}

export async function gitState(dir: string = process.cwd()): Promise<GitState> {
  const git = simpleGit({baseDir: dir, timeout: {block: 5000}})
  try {
    if (!(await git.checkIsRepo())) return {repository: false, commit: null, branch: null, dirty: null}
    const status = await git.status()
    const commit = await git.revparse(['HEAD']).catch(() => null)
    return {repository: true, commit: commit?.trim() || null, branch: status.current ?? null, dirty: !status.isClean()}
  } catch {
    return {repository: false, commit: null, branch: null, dirty: null}
  }
}

/** The merge-base of HEAD and `ref`, or null (no ref, not a repository, unrelated histories). */
export async function mergeBase(dir: string, ref: string | undefined): Promise<string | null> {
  if (!ref) return null
  try {
    return (await simpleGit({baseDir: dir}).raw(['merge-base', 'HEAD', ref])).trim() || null
  } catch {
    return null
  }
}

export class GitShowError extends Error {
  override name = 'GitShowError'
  constructor(
    message: string,
    readonly reason: 'not-a-repository' | 'missing',
  ) {
    super(message)
  }
}

/**
 * The text of `file` (a path on disk) as committed at `ref`: `git show <ref>:<path from the
 * top of the repository>`. Throws GitShowError when `dir` is not in a repository or the file
 * is not at that ref.
 */
export async function showAtRef(dir: string, ref: string, file: string): Promise<{text: string; path: string}> {
  const git = simpleGit({baseDir: dir})
  let top: string
  try {
    top = (await git.revparse(['--show-toplevel'])).trim()
  } catch {
    throw new GitShowError(`${dir} is not inside a git repository`, 'not-a-repository')
  }
  const rel = path.relative(top, path.resolve(dir, file)).split(path.sep).join('/')
  try {
    return {text: await git.show([`${ref}:${rel}`]), path: rel}
  } catch (e) {
    const why =
      String((e as Error).message ?? '')
        .split('\n')
        .find((l) => l.trim()) ?? 'git show failed'
    throw new GitShowError(`no baseline at ${ref}:${rel} (${why.trim().slice(0, 160)})`, 'missing')
  }
}
