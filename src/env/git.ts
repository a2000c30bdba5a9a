// The git state of the directory repro runs in, stamped into every record (simple-git).

import {execFile} from 'node:child_process'
import {promises as fs} from 'node:fs'
import {createRequire} from 'node:module'
import path from 'node:path'
import {timed} from './timings.js'

// simple-git takes ~50-100 ms to import: loaded only for a merge-base or a baseline at a ref; with
// require, not import() (see measureHost in host.ts: a CommonJS package import()ed beside
// another can come back empty under node 20 with a symlinked node_modules)
const loadGit = async () => (createRequire(import.meta.url)('simple-git') as typeof import('simple-git')).simpleGit

/** Variables that point git somewhere else than the directory's own ancestors. */
const GIT_LOCATION_ENV = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_COMMON_DIR']

/**
 * True when git could not find a repository from `dir`: no GIT_DIR-like variable, and no `.git`
 * (folder, file or link) in `dir` or any folder above it, on its physical path (git discovers
 * from getcwd(), so a symlinked `dir` is resolved first). False when it might: then git decides.
 */
export async function surelyOutsideGit(dir: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  if (GIT_LOCATION_ENV.some((v) => env[v])) return false
  let d: string
  try {
    d = await fs.realpath(dir)
  } catch {
    return false
  }
  for (;;) {
    const found = await fs.lstat(path.join(d, '.git')).then(
      () => true,
      (e: NodeJS.ErrnoException) => e.code !== 'ENOENT' && e.code !== 'ENOTDIR',
    )
    if (found) return false
    const up = path.dirname(d)
    if (up === d) return true
    d = up
  }
}

export interface GitState {
  repository: boolean
  commit: string | null
  branch: string | null
  dirty: boolean | null
}

export function gitState(dir: string = process.cwd()): Promise<GitState> {
  return timed('git', 'state', () => readGitState(dir))
}

const NOT_A_REPOSITORY: GitState = {repository: false, commit: null, branch: null, dirty: null}

async function readGitState(dir: string): Promise<GitState> {
  // no repository anywhere above: what git would answer, without starting it
  if (await surelyOutsideGit(dir)) return NOT_A_REPOSITORY
  // one `git status` gives the commit, the branch and the dirty state (porcelain v2's branch
  // headers), where simple-git took three git processes and ~40 ms to load
  const status = await new Promise<string | null>((resolve) => {
    execFile(
      'git',
      ['status', '--porcelain=v2', '--branch', '--untracked-files=all'],
      {cwd: dir, timeout: 5000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8'},
      (error, stdout) => resolve(error ? null : stdout),
    )
  })
  return status === null ? NOT_A_REPOSITORY : parseGitStatus(status)
}

/**
 * `git status --porcelain=v2 --branch` → the stamp: `# branch.oid` (`(initial)` before the first
 * commit), `# branch.head` (`(detached)`: HEAD, as simple-git named it), and dirty when any file is
 * changed, staged, conflicted or untracked (an entry line).
 */
export function parseGitStatus(text: string): GitState {
  let commit: string | null = null
  let branch: string | null = null
  let dirty = false
  for (const line of text.split('\n')) {
    if (line.startsWith('# branch.oid ')) {
      const oid = line.slice('# branch.oid '.length).trim()
      commit = /^[0-9a-f]{40,64}$/.test(oid) ? oid : null
    } else if (line.startsWith('# branch.head ')) {
      const head = line.slice('# branch.head '.length).trim()
      branch = head === '(detached)' ? 'HEAD' : head || null
    } else if (line && !line.startsWith('#')) dirty = true
  }
  return {repository: true, commit, branch, dirty}
}

/** The merge-base of HEAD and `ref`, or null (no ref, not a repository, unrelated histories). */
export async function mergeBase(dir: string, ref: string | undefined): Promise<string | null> {
  if (!ref) return null
  const simpleGit = await loadGit()
  try {
    return (await timed('git', 'merge-base', () => simpleGit({baseDir: dir}).raw(['merge-base', 'HEAD', ref]))).trim() || null
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
export function showAtRef(dir: string, ref: string, file: string): Promise<{text: string; path: string}> {
  return timed('git', 'show', () => gitShow(dir, ref, file))
}

async function gitShow(dir: string, ref: string, file: string): Promise<{text: string; path: string}> {
  const simpleGit = await loadGit()
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
