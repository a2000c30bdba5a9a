// The git stamp without starting git where there is surely no repository (src/env/git.ts): the
// answer git would give, and git itself wherever a repository might be found.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {gitState, parseGitStatus, surelyOutsideGit} from '../../../src/env/git.js'

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

  test('one `git status`: commit, branch and dirty state as git reports them', {skip: !hasGit}, async () => {
    const repo = tmp()
    git(repo, 'init', '-q', '-b', 'trunk')
    writeFileSync(path.join(repo, 'f.txt'), 'x')
    assert.deepEqual(
      await gitState(repo),
      {repository: true, commit: null, branch: 'trunk', dirty: true},
      'no commit yet, one untracked file',
    )
    git(repo, 'add', 'f.txt')
    git(repo, 'commit', '-qm', 'one')
    const head = spawnSync('git', ['rev-parse', 'HEAD'], {cwd: repo, encoding: 'utf8'}).stdout.trim()
    assert.deepEqual(await gitState(repo), {repository: true, commit: head, branch: 'trunk', dirty: false})
    writeFileSync(path.join(repo, 'f.txt'), 'y')
    assert.equal((await gitState(repo)).dirty, true, 'a modified file')
    git(repo, 'checkout', '-q', '--', 'f.txt')
    writeFileSync(path.join(repo, '.gitignore'), 'out/\n')
    git(repo, 'add', '.gitignore')
    git(repo, 'commit', '-qm', 'two')
    mkdirSync(path.join(repo, 'out'))
    writeFileSync(path.join(repo, 'out', 'report.json'), '{}')
    assert.equal((await gitState(repo)).dirty, false, 'an ignored file is not a change')
    git(repo, 'checkout', '-q', '--detach', 'HEAD~1')
    // at that commit out/ is not ignored yet: untracked, so dirty
    assert.deepEqual(await gitState(repo), {repository: true, commit: head, branch: 'HEAD', dirty: true}, 'detached: HEAD')
    // inside .git there is no work tree: not a repository, as before
    assert.equal((await gitState(path.join(repo, '.git'))).repository, false)
  })

  test('parseGitStatus reads porcelain v2', () => {
    const oid = 'a'.repeat(40)
    assert.deepEqual(parseGitStatus(`# branch.oid ${oid}\n# branch.head main\n# branch.upstream origin/main\n# branch.ab +1 -0\n`), {
      repository: true,
      commit: oid,
      branch: 'main',
      dirty: false,
    })
    assert.equal(
      parseGitStatus(`# branch.oid ${oid}\n# branch.head main\n1 .M N... 100644 100644 100644 ${oid} ${oid} f.txt\n`).dirty,
      true,
    )
    assert.equal(parseGitStatus(`# branch.oid ${oid}\n# branch.head main\n? new.txt\n`).dirty, true)
    assert.deepEqual(parseGitStatus('# branch.oid (initial)\n# branch.head (detached)\n'), {
      repository: true,
      commit: null,
      branch: 'HEAD',
      dirty: false,
    })
  })
})
