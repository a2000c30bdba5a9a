// The git stamp without starting git where there is surely no repository (src/env/git.ts): the
// answer git would give, and git itself wherever a repository might be found.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {gitState, surelyOutsideGit} from '../../../src/env/git.js'

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'repro-git-'))
const hasGit = spawnSync('git', ['--version']).status === 0

function git(cwd: string, ...args: string[]) {
  const r = spawnSync('git', ['-c', 'user.email=ci@example.com', '-c', 'user.name=ci', ...args], {cwd, encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
}

describe('git state', () => {
  test('no .git anywhere above: not a repository, as git says, without asking git', async () => {
    const dir = path.join(tmp(), 'a', 'b')
    mkdirSync(dir, {recursive: true})
    // the temp folder itself must not lie in a work tree for this test to mean anything
    if (!(await surelyOutsideGit(os.tmpdir()))) return
    assert.equal(await surelyOutsideGit(dir), true)
    assert.deepEqual(await gitState(dir), {repository: false, commit: null, branch: null, dirty: null})
    if (hasGit) assert.notEqual(spawnSync('git', ['rev-parse', '--is-inside-work-tree'], {cwd: dir}).status, 0, 'git agrees')
  })

  test('a .git folder or file above, a symlink into a repository, or GIT_DIR: git decides', {skip: !hasGit}, async () => {
    const repo = tmp()
    git(repo, 'init', '-q', '-b', 'main')
    writeFileSync(path.join(repo, 'f.txt'), 'x')
    git(repo, 'add', 'f.txt')
    git(repo, 'commit', '-qm', 'one')
    const sub = path.join(repo, 'deep', 'er')
    mkdirSync(sub, {recursive: true})
    assert.equal(await surelyOutsideGit(sub), false)
    const state = await gitState(sub)
    assert.equal(state.repository, true)
    assert.equal(state.branch, 'main')
    assert.match(state.commit ?? '', /^[0-9a-f]{40}$/)
    // a worktree or submodule has a .git file
    const wt = tmp()
    writeFileSync(path.join(wt, '.git'), 'gitdir: /nowhere\n')
    assert.equal(await surelyOutsideGit(wt), false)
    // git discovers from the physical path: a link from outside into the repository
    const link = path.join(tmp(), 'link')
    symlinkSync(sub, link)
    assert.equal(await surelyOutsideGit(link), false)
    assert.equal((await gitState(link)).repository, true)
    const outside = tmp()
    assert.equal(await surelyOutsideGit(outside, {GIT_DIR: path.join(repo, '.git')}), false)
    assert.equal(await surelyOutsideGit(path.join(outside, 'missing')), false, 'a folder that is not there: left to git')
  })
})
