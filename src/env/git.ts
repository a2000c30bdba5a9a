// The git state of the directory repro runs in, stamped into every record (simple-git).

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
