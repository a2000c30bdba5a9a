// repro check in a real git repo (examples/ml-repo, whose check runs its own training script):
// baseline committed on main, an unchanged branch, a branch that edits the script, a branch
// that swaps the image, and two checks racing on one cache.

import {describe, test, before} from 'node:test'
import assert from 'node:assert/strict'
import {spawn, spawnSync} from 'node:child_process'
import {cpSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {ROOT, repro, testEnv, tmpDir} from './helpers.js'
import {needs} from './prereqs.js'

function git(cwd: string, ...args: string[]): string {
  const r = spawnSync('git', ['-c', 'user.email=ci@example.com', '-c', 'user.name=ci', ...args], {cwd, encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
  return r.stdout
}

function latestCheck(
  repo: string,
  out: string,
): {status: string; audit: {targets: {runs: {cached?: boolean}[]; trace_digest: {root: string}}[]}} {
  return JSON.parse(readFileSync(path.join(repo, out, 'check.json'), 'utf8'))
}

describe('repro check (example ML repo, real git, real engine)', {skip: needs('docker', 'fixture-images')}, () => {
  const cache = tmpDir('repro-check-cache-')
  let repo = ''
  before(() => {
    repo = path.join(tmpDir('repro-mlrepo-'), 'ml-repo')
    cpSync(path.join(ROOT, 'examples', 'ml-repo'), repo, {recursive: true})
    git(repo, 'init', '-q', '-b', 'main')
    git(repo, 'add', '-A')
    git(repo, 'commit', '-qm', 'ml repo')
    const r = repro(['check', '--update-baseline', '--out', 'reports/c0'], {cwd: repo, cacheDir: cache})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    git(repo, 'add', '-f', 'reports/baseline.json')
    git(repo, 'commit', '-qm', 'baseline')
  })

  test('unchanged image: exit 0 within policy, every run reused from the warm cache', () => {
    git(repo, 'checkout', '-qb', 'unchanged')
    const r = repro(['check', '--baseline-ref', 'main', '--out', 'reports/c1'], {cwd: repo, cacheDir: cache})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    assert.match(r.stdout, /^## ✅ repro check: within policy/)
    const c = latestCheck(repo, 'reports/c1')
    assert.ok(
      c.audit.targets[0]!.runs.every((run) => run.cached === true),
      'nothing reran',
    )
    assert.match(readFileSync(path.join(repo, 'reports/c1/check.md'), 'utf8'), /merge-base/)
    git(repo, 'checkout', '-q', 'main')
  })

  test('the script edited (one comment line): every run reruns, and lands on the same trace', () => {
    git(repo, 'checkout', '-qb', 'edit-script')
    const script = path.join(repo, 'train.py')
    writeFileSync(script, `${readFileSync(script, 'utf8')}\n# a comment: a new script, so a new cache key\n`)
    git(repo, 'commit', '-qam', 'comment')
    const r = repro(['check', '--baseline-ref', 'main', '--out', 'reports/c3'], {cwd: repo, cacheDir: cache})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    const c = latestCheck(repo, 'reports/c3')
    const runs = c.audit.targets[0]!.runs
    assert.ok(runs.length > 0 && runs.every((run) => run.cached !== true), 'every run reran')
    const unchanged = latestCheck(repo, 'reports/c0')
    assert.equal(c.audit.targets[0]!.trace_digest.root, unchanged.audit.targets[0]!.trace_digest.root)
    git(repo, 'checkout', '-q', 'main')
  })

  test('two checks started at once on one (cold) cache both succeed and agree', async () => {
    const shared = tmpDir('repro-race-cache-')
    const run = (out: string) =>
      new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'run.js'), 'check', '--out', out], {
          cwd: repo,
          stdio: 'ignore',
          env: testEnv({cacheDir: shared}),
        })
        child.on('exit', resolve)
      })
    const codes = await Promise.all([run('reports/race-a'), run('reports/race-b')])
    assert.deepEqual(codes, [0, 0])
    const a = latestCheck(repo, 'reports/race-a')
    const b = latestCheck(repo, 'reports/race-b')
    assert.equal(a.audit.targets[0]!.trace_digest.root, b.audit.targets[0]!.trace_digest.root)
    assert.equal(a.status, b.status)
  })

  test('a branch that swaps bookworm for trixie: exit 1, the summary names the cause', () => {
    git(repo, 'checkout', '-qb', 'upgrade-torch')
    const cfg = path.join(repo, 'repro.config.json')
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('repro-fixture:bookworm', 'repro-fixture:trixie'))
    git(repo, 'commit', '-qam', 'trixie')
    const r = repro(['check', '--baseline-ref', 'main', '--out', 'reports/c2'], {cwd: repo, cacheDir: cache})
    assert.equal(r.status, 1, r.stdout + r.stderr)
    const md = readFileSync(path.join(repo, 'reports/c2/check.md'), 'utf8')
    assert.match(md.split('\n')[0]!, /^## ❌ repro check: beyond policy — not allowed by policy: torch\.version 1\.13\S* → 2\.6/)
    git(repo, 'checkout', '-q', 'main')
  })

  test('config and baseline errors are one line with exit 2', () => {
    const bad = tmpDir('repro-badcfg-')
    writeFileSync(path.join(bad, 'repro.config.json'), JSON.stringify({targets: [{image: 'x'}], repeat: 2}))
    const r = repro(['check'], {cwd: bad})
    assert.equal(r.status, 2)
    assert.match(r.stderr, /^repro: repro\.config\.json: \(top level\): Unrecognized key.*"repeat"/)
    const none = repro(['check'], {cwd: tmpDir()})
    assert.equal(none.status, 2)
    assert.match(none.stderr, /no repro\.config\.json/)
    const noBase = repro(['check', '--baseline-ref', 'main', '--baseline', 'reports/missing.json'], {cwd: repo, cacheDir: cache})
    assert.equal(noBase.status, 2)
    assert.match(noBase.stderr, /no baseline at main:reports\/missing\.json/)
  })
})
