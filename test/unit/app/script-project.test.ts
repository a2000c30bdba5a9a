// The project copy (script-project.ts, script-inputs.ts) on a real filesystem and real git:
// what is copied, what never is, the --include rules and the over-cap error.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {resolveScriptSpec, type ScriptRequest, scriptProject, scriptDigest, listInputs} from '../../../src/app/script-inputs.js'
import {collectProject, findProjectRoot} from '../../../src/app/script-project.js'
import {ensureOutDir} from '../../../src/app/out-dir.js'
import {ReproError} from '../../../src/errors.js'

const dirs: string[] = []
process.on('exit', () => {
  for (const d of dirs) rmSync(d, {recursive: true, force: true})
})
function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'repro-project-'))
  dirs.push(d)
  return d
}
function write(root: string, rel: string, text = 'x') {
  mkdirSync(path.dirname(path.join(root, rel)), {recursive: true})
  writeFileSync(path.join(root, rel), text)
}
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], {cwd, stdio: 'ignore'})

/** A git repo: train.py + model.py tracked, data/ ignored, an untracked note, a venv, an out dir, links. */
async function repo(): Promise<{root: string; outside: string}> {
  const base = tmp()
  const root = path.join(base, 'repo')
  const outside = path.join(base, 'outside')
  write(outside, 'big.bin', 'big')
  write(root, '.gitignore', 'data/\n')
  write(root, 'train.py', 'import model\n')
  write(root, 'model.py', 'x = 1\n')
  write(root, 'data/train.bin', '0123456789')
  write(root, 'notes.txt', 'untracked, not ignored')
  write(root, '.venv/pyvenv.cfg', 'home = /usr/bin')
  write(root, '.venv/lib/site.py', 'x')
  write(root, 'pkg/__pycache__/m.cpython-311.pyc', 'x')
  write(root, 'pkg/m.py', 'x')
  await ensureOutDir(path.join(root, 'reports', 'audit-1'))
  write(root, 'reports/audit-1/report.json', '{}')
  symlinkSync(path.join(outside, 'big.bin'), path.join(root, 'out_link'))
  symlinkSync('model.py', path.join(root, 'in_link.py'))
  git(root, 'init', '-q')
  git(root, 'add', '.gitignore', 'train.py', 'model.py', 'in_link.py', 'pkg/m.py')
  git(root, 'commit', '-qm', 'init')
  return {root, outside}
}

const request = (root: string, extra: Partial<ScriptRequest> = {}): ScriptRequest => ({
  script: 'train.py',
  include: [],
  args: [],
  maxSteps: 5,
  observer: false,
  allowErrors: false,
  base: root,
  source: 'flags',
  ...extra,
})

async function rejects(p: Promise<unknown>, re: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ReproError, String(e))
    assert.match(e.oneLine(), re)
    return true
  })
}

describe('the project copy', () => {
  test('git: tracked and untracked-unignored files; never .git, __pycache__, a venv, a CACHEDIR.TAG folder or a link out; a link inside is copied', async () => {
    const {root} = await repo()
    const warnings: string[] = []
    const spec = await resolveScriptSpec(request(root))
    const m = await scriptProject(spec, (w) => warnings.push(w))
    assert.equal(m.git, true)
    assert.deepEqual(
      m.files.map((f) => f.rel),
      ['.gitignore', 'in_link.py', 'model.py', 'notes.txt', 'pkg/m.py', 'train.py'],
    )
    assert.equal(m.files.find((f) => f.rel === 'in_link.py')!.size, 'x = 1\n'.length, 'the content of the file the link points at')
    assert.equal(warnings.length, 1)
    assert.match(
      warnings[0]!,
      /^not copied, symlinks leading out of the project \(or nowhere\): out_link -> \S+big\.bin — .*--include.*--project/,
    )
    assert.ok(m.skipped.some((s) => s.rel === '.venv' && s.reason === 'a virtual environment'))
    assert.ok(m.skipped.some((s) => s.rel === 'reports/audit-1' && /CACHEDIR\.TAG/.test(s.reason)))
  })

  test('no git: every file under the root, the same rules; the out dir of the run (and a file such as the baseline) excluded explicitly', async () => {
    const {root} = await repo()
    rmSync(path.join(root, '.git'), {recursive: true})
    write(root, 'out-now/partial.json', '{}')
    const m = await collectProject({
      root,
      include: [],
      exclude: [path.join(root, 'out-now'), path.join(root, 'notes.txt')],
      includeName: '--include',
    })
    assert.equal(m.git, false)
    assert.deepEqual(
      m.files.map((f) => f.rel),
      ['.gitignore', 'data/train.bin', 'in_link.py', 'model.py', 'pkg/m.py', 'train.py'],
    )
  })

  test('--include adds an ignored folder at its place; a tracked file adds nothing (a warning); the digest covers the whole copy', async () => {
    const {root} = await repo()
    const warnings: string[] = []
    const spec = await resolveScriptSpec(request(root, {include: ['data', 'model.py']}))
    const m = await scriptProject(spec, (w) => warnings.push(w))
    assert.ok(m.files.some((f) => f.rel === 'data/train.bin'))
    assert.ok(warnings.includes('--include model.py: adds nothing, it is already wholly in the project copy'))
    const before = await scriptDigest(spec)
    write(root, 'model.py', 'x = 2\n')
    const edited = await scriptDigest(await resolveScriptSpec(request(root, {include: ['data']})))
    assert.notEqual(before, edited, 'an edited sibling module is a new digest')
  })

  test('--include mistakes are one line each: the root itself, outside the root, missing', async () => {
    const {root, outside} = await repo()
    await rejects(
      resolveScriptSpec(request(root, {include: ['.']})),
      /^--include: .* is the project root: it would copy everything the repo ignores.* — name the ignored folders/,
    )
    await rejects(resolveScriptSpec(request(root, {include: [outside]})), /^--include: .*outside is outside the project /)
    await rejects(resolveScriptSpec(request(root, {include: ['nope']})), /^--include: .*nope does not exist/)
  })

  test('the root: a nested folder with repro.config.json is its own project; else the .git above; else the script folder', async () => {
    const {root} = await repo()
    write(root, 'examples/demo/repro.config.json', '{}')
    write(root, 'examples/demo/train.py', 'x')
    write(root, 'examples/plain/train.py', 'x')
    assert.equal(await findProjectRoot(path.join(root, 'examples', 'demo')), path.join(root, 'examples', 'demo'))
    assert.equal(await findProjectRoot(path.join(root, 'examples', 'plain')), root)
    const lone = tmp()
    assert.equal(await findProjectRoot(lone), lone)
    // run from the repo's top, that project does not hold the working directory: --cwd moves it
    await assert.rejects(resolveScriptSpec(request(root, {script: 'examples/demo/train.py'})), /outside the project/)
    const spec = await resolveScriptSpec(request(root, {script: 'examples/demo/train.py', cwd: 'examples/demo'}))
    assert.equal(spec.root, path.join(root, 'examples', 'demo'))
    assert.equal(spec.cwd, spec.root)
  })

  test('a working directory outside the project: one line naming --cwd', async () => {
    const {root, outside} = await repo()
    await rejects(resolveScriptSpec(request(root, {cwd: outside})), /^--cwd: the working directory .*outside is outside the project /)
  })

  test('over the cap: the largest top-level entries named, largest first, and --list-inputs suggested', async () => {
    const root = tmp()
    write(root, 'train.py', 'x')
    write(root, 'small/a.txt', 'x'.repeat(10))
    const big = Buffer.alloc(40 * 1024 * 1024)
    mkdirSync(path.join(root, 'data'))
    writeFileSync(path.join(root, 'data', 'a.bin'), big)
    writeFileSync(path.join(root, 'data', 'b.bin'), big)
    writeFileSync(path.join(root, 'weights.pt'), Buffer.alloc(1024 * 1024))
    const spec = await resolveScriptSpec(request(root))
    await rejects(
      scriptDigest(spec),
      /^--script: the project copy of .* is 5 files, 81\.0 MiB: over the cap of 5000 files, 64\.0 MiB \(largest: data\/ 80\.0 MiB, weights\.pt 1\.0 MiB, small\/ 10 B, train\.py 1 B\) — see what would be copied with --list-inputs/,
    )
    const listing = await listInputs(spec)
    assert.equal(listing.over_cap, true)
    assert.deepEqual(
      listing.files.map((f) => f.path),
      ['data/a.bin', 'data/b.bin', 'small/a.txt', 'train.py', 'weights.pt'],
    )
  })

  test('an out dir carries a valid CACHEDIR.TAG', async () => {
    const root = tmp()
    await ensureOutDir(path.join(root, 'o'))
    const m = await collectProject({root, include: [], exclude: [], includeName: '--include'})
    assert.deepEqual(m.files, [])
    assert.ok(m.skipped.some((s) => s.rel === 'o'))
  })
})
