// Code shaped like what users bring (issue 26): the example repositories under examples/ —
// a GPT repo (sibling modules, an exec'd config, gitignored data), a hand-updated LSTM language
// model, a one-file hand-updated regression, LBFGS with a closure and a lecture notebook — each
// taken as it is, through `repro audit`, on the host python and on the fixture images; and the
// project copy's edges (what must never ride along) as one line each.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {cpSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {PYTHON, ROOT, repro, tmpDir} from './helpers.js'
import {needs} from './prereqs.js'

const EXAMPLES = path.join(ROOT, 'examples')

interface ScriptInfo {
  steps_recorded: number
  step_definition: string | null
  closures?: {evaluations: number} | null
  notebook?: {
    cells: number
    cells_run: number
    ipython?: boolean
    skipped_magics: {cell: number; magic: string}[]
    errors: {cell: number}[]
  } | null
  observer_check?: {equal: boolean} | null
}
interface Report {
  verdict: {status: string; exit_code: number; headline: string}
  targets: {name: string; status: string; error?: {line: string}; runs: {script?: ScriptInfo}[]}[]
  comparisons: {role: string; divergence: {bitwise_identical: boolean; first_divergence: {step: number; entry: string} | null}}[]
  attribution?: {suspects: {name: string; confidence: string}[]}
}

/** A copy of examples/NAME in a fresh git repository (committed), as a user's clone would be. */
function exampleRepo(name: string): string {
  const repo = path.join(tmpDir(`repro-${name}-`), name)
  cpSync(path.join(EXAMPLES, name), repo, {
    recursive: true,
    // the work tree may hold data made by an earlier prepare: a clone does not
    filter: (src) => !/\.bin$|meta\.json$/.test(src) || !src.includes(`${path.sep}data${path.sep}`),
  })
  const git = (...args: string[]) => {
    const r = spawnSync('git', args, {cwd: repo, encoding: 'utf8'})
    assert.equal(r.status, 0, r.stderr)
  }
  git('init', '-q')
  git('add', '.')
  git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'example')
  return repo
}

function audit(args: string[], cwd: string, expected: number, out = tmpDir()): Report {
  const r = repro(['audit', ...args, '--json', '--out', out], {cwd, timeoutMs: 600_000})
  assert.equal(r.status, expected, r.stdout.slice(-3000) + r.stderr.slice(-3000))
  return JSON.parse(r.stdout) as Report
}

/** The modules the probe saw (run.json `model.modules`) of the first run of target N in an audit's out dir. */
function modulesOf(out: string, target = 1): string[] {
  const run = JSON.parse(readFileSync(path.join(out, `t${target}-script-r1`, 'run.json'), 'utf8')) as {model: {modules: string[]}}
  return run.model.modules
}

const script = (report: Report, target = 0) => report.targets[target]!.runs[0]!.script!

describe('example repositories through repro, host python', {skip: needs('torch')}, () => {
  test('gpt-repo: gitignored data is named with the --include that adds it; with it, bitwise against itself with its module paths in the trace', () => {
    const repo = exampleRepo('gpt-repo')
    const prep = spawnSync(PYTHON, ['data/tiny/prepare.py'], {cwd: repo, encoding: 'utf8'})
    assert.equal(prep.status, 0, prep.stderr)
    const args = ['--script', 'train.py', '--script-args', 'config/train_tiny.py', '--python', PYTHON, '--max-steps', '5']
    const missing = audit([...args, '--repeats', '1'], repo, 2)
    assert.match(
      missing.targets[0]!.error!.line,
      /^#1 python:\S+: .*data\/tiny\/(meta\.json|train\.bin), which exists on the host but was not copied \(git ignores it\) — add it with --include data\/tiny\/train\.bin$/,
    )
    const out = tmpDir()
    const report = audit([...args, '--include', 'data', '--repeats', '2'], repo, 0, out)
    assert.equal(report.verdict.status, 'reproducible')
    assert.equal(script(report).steps_recorded, 5)
    assert.equal(script(report).step_definition, 'optimizer step')
    const modules = modulesOf(out)
    for (const m of ['transformer.wte', 'transformer.h.0.ln_1', 'transformer.h.0.attn.c_attn', 'lm_head'])
      assert.ok(modules.includes(m), `${m} in ${modules.join(', ')}`)
  })

  test('gpt-repo --list-inputs: tracked files, the ignored data only with --include data; nothing runs', () => {
    const repo = exampleRepo('gpt-repo')
    spawnSync(PYTHON, ['data/tiny/prepare.py'], {cwd: repo})
    const without = repro(['audit', '--script', 'train.py', '--list-inputs'], {cwd: repo})
    assert.equal(without.status, 0, without.stderr)
    assert.match(without.stdout, / {2}model\.py$/m)
    assert.match(without.stdout, / {2}data\/tiny\/input\.txt$/m)
    assert.doesNotMatch(without.stdout, /train\.bin/)
    const withData = repro(['audit', '--script', 'train.py', '--include', 'data', '--list-inputs'], {cwd: repo})
    assert.equal(withData.status, 0, withData.stderr)
    assert.match(withData.stdout, / {2}data\/tiny\/train\.bin$/m)
    assert.match(withData.stdout, /^script {2}project\/train\.py$/m)
    assert.doesNotMatch(withData.stdout, /\.git\//)
  })

  test('word-lm (hand-updated LSTM LM): steps by backward, bitwise against itself; threads=2 is named where it acts', () => {
    const repo = exampleRepo('word-lm')
    const base = ['--script', 'main.py', '--script-args', '--epochs 1', '--max-steps', '6']
    const self = audit([...base, '--python', PYTHON, '--repeats', '2'], repo, 0)
    assert.equal(script(self).step_definition, 'backward')
    assert.equal(script(self).steps_recorded, 6)
    assert.equal(self.comparisons.find((c) => c.role === 'repeat')!.divergence.bitwise_identical, true)
    // LayerNorm's weight gradient is summed over rows in per-thread chunks (on AVX2 and AVX-512 CPUs alike)
    const threads = audit(
      [...base, '--python', PYTHON, '--python', PYTHON, '--set', '1:threads=1', '--set', '2:threads=2', '--repeats', '1'],
      repo,
      1,
    )
    const cross = threads.comparisons.find((c) => c.role === 'cross')!
    assert.equal(cross.divergence.first_divergence!.step, 0)
    assert.equal(cross.divergence.first_divergence!.entry, 'grad/norm.weight')
    assert.equal(threads.attribution!.suspects[0]!.name, 'threads')
    assert.equal(threads.attribution!.suspects[0]!.confidence, 'high')
  })

  test('poly-regression (one file, raw tensors, hand-written update, unseeded): steps by backward, parameters by variable name, bitwise against itself', () => {
    const repo = exampleRepo('poly-regression')
    const report = audit(['--script', 'fit.py', '--python', PYTHON, '--repeats', '2', '--max-steps', '8', '--check-observer'], repo, 0)
    const s = script(report)
    assert.equal(s.step_definition, 'backward')
    assert.equal(s.steps_recorded, 8)
    assert.equal(s.observer_check!.equal, true)
    assert.equal(report.comparisons.find((c) => c.role === 'repeat')!.divergence.bitwise_identical, true)
  })

  test('sine-lbfgs (LBFGS with a closure): one trace step per optimizer step however often the closure runs', () => {
    const repo = exampleRepo('sine-lbfgs')
    const report = audit(['--script', 'train.py', '--python', PYTHON, '--repeats', '1', '--max-steps', '2', '--check-observer'], repo, 0)
    const s = script(report)
    assert.equal(s.step_definition, 'optimizer step')
    assert.equal(s.steps_recorded, 2)
    assert.ok(s.closures!.evaluations > 2, `closure evaluations: ${s.closures!.evaluations}`)
    assert.equal(s.observer_check!.equal, true)
  })

  test('--module pkg.train runs as python -m does, from the working directory (relative imports, argv[0] the module file)', () => {
    const dir = path.join(tmpDir(), 'pkgmod')
    cpSync(path.join(ROOT, 'probe', 'tests', 'scripts', 'pkgmod'), dir, {recursive: true})
    writeFileSync(path.join(dir, 'repro.config.json'), '{}')
    const report = audit(['--module', 'trainpkg.train', '--script-args', '--x 1', '--python', PYTHON, '--repeats', '2'], dir, 0)
    assert.equal(report.verdict.status, 'reproducible')
    assert.equal(script(report).steps_recorded, 3)
    const bad = repro(['audit', '--module', 'trainpkg/train', '--python', PYTHON], {cwd: dir})
    assert.equal(bad.status, 2)
    assert.match(bad.stderr, /^repro: --module: "trainpkg\/train" is not a dotted module name — /)
  })

  test('the project copy: --include ., a path outside, an out folder inside, a link out of the tree, a file over the cap, a hostile notebook: one line each', () => {
    const repo = exampleRepo('poly-regression')
    const list = (...args: string[]) => repro(['audit', '--script', 'fit.py', ...args, '--list-inputs'], {cwd: repo})
    const oneLine = (r: {status: number | null; stderr: string}, re: RegExp) => {
      assert.equal(r.status, 2, r.stderr)
      const lines = r.stderr.trim().split('\n')
      assert.equal(lines.length, 1, r.stderr)
      assert.match(lines[0]!, re)
    }
    oneLine(list('--include', '.'), /^repro: --include: .* is the project root: it would copy everything the repo ignores/)
    oneLine(list('--include', '/etc/hostname'), /^repro: --include: \/etc\/hostname is outside the project/)
    // repro's own output inside the repo (a run's reports) never rides along
    const out = path.join(repo, 'reports', 'audit-1')
    assert.equal(
      repro(['audit', '--script', 'fit.py', '--python', PYTHON, '--repeats', '1', '--max-steps', '1', '--out', out], {cwd: repo}).status,
      0,
    )
    symlinkSync('/etc', path.join(repo, 'etc-link'))
    const listed = list()
    assert.equal(listed.status, 0, listed.stderr)
    assert.doesNotMatch(listed.stdout, /reports|etc-link/)
    assert.match(listed.stderr, /^repro: warning: not copied, symlinks leading out of the project .*etc-link -> \/etc/m)
    rmSync(path.join(repo, 'etc-link'))
    writeFileSync(path.join(repo, 'big.bin'), Buffer.alloc(65 * 1024 * 1024))
    spawnSync('git', ['add', 'big.bin'], {cwd: repo})
    oneLine(repro(['audit', '--script', 'fit.py', '--python', PYTHON, '--out', tmpDir()], {cwd: repo}), /over the cap.*big\.bin/)
    const nb = path.join(repo, 'hostile.ipynb')
    writeFileSync(nb, `{"nbformat": 4, "cells": [{"cell_type": "code", "source": "\\u001b[2J\\u0000x"}]}`)
    oneLine(
      repro(['audit', '--script', 'hostile.ipynb', '--python', PYTHON, '--out', tmpDir()], {cwd: repo}),
      /^repro: --script: hostile\.ipynb: cell 1 .*NUL/,
    )
    writeFileSync(nb, '{"nbformat": 4, "cells": [')
    oneLine(
      repro(['audit', '--script', 'hostile.ipynb', '--python', PYTHON, '--out', tmpDir()], {cwd: repo}),
      /^repro: --script: hostile\.ipynb is not valid JSON/,
    )
  })
})

describe('example repositories on the fixture images', {skip: needs('docker', 'fixture-images')}, () => {
  test('gpt-repo bookworm vs trixie: drift located in a named module of its model', () => {
    const repo = exampleRepo('gpt-repo')
    const prep = spawnSync(PYTHON, ['data/tiny/prepare.py'], {cwd: repo, encoding: 'utf8'})
    assert.equal(prep.status, 0, prep.stderr)
    const out = tmpDir()
    const report = audit(
      [
        ...['--script', 'train.py', '--script-args', 'config/train_tiny.py', '--include', 'data', '--max-steps', '4'],
        ...['--image', 'repro-fixture:bookworm', '--image', 'repro-fixture:trixie', '--repeats', '1', '--no-explain'],
      ],
      repo,
      1,
      out,
    )
    assert.deepEqual(
      report.targets.map((t) => t.status),
      ['ok', 'ok'],
    )
    const first = report.comparisons.find((c) => c.role === 'cross')!.divergence.first_divergence!
    const modules = modulesOf(out)
    const module = first.entry.replace(/^(fwd|grad|param|buffer)\//, '').replace(/\.(weight|bias)$/, '')
    assert.ok(modules.includes(module), `${first.entry} names a module of the model (${modules.slice(0, 8).join(', ')}, …)`)
  })

  test('word-lm on trixie: bitwise against itself, steps by backward', () => {
    const repo = exampleRepo('word-lm')
    const report = audit(
      ['--script', 'main.py', '--script-args', '--epochs 1', '--image', 'repro-fixture:trixie', '--max-steps', '4', '--repeats', '2'],
      repo,
      0,
    )
    assert.equal(script(report).step_definition, 'backward')
    assert.equal(report.comparisons.find((c) => c.role === 'repeat')!.divergence.bitwise_identical, true)
  })

  test('the lecture notebook on an image with matplotlib: the raising cell stops it (exit 2, named); --allow-errors traces it with its variable names', () => {
    const repo = exampleRepo('notebook')
    const args = ['--script', 'lecture.ipynb', '--image', 'repro-fixture:matplotlib', '--max-steps', '5', '--repeats', '1']
    const stops = audit(args, repo, 2)
    assert.match(
      stops.targets[0]!.error!.line,
      /^#1 docker:repro-fixture:matplotlib: cell 8 \(# this raises: shapes don't match \(3x4 @ 3x4\)\): RuntimeError: .* — .*--allow-errors/,
    )
    const out = tmpDir()
    const r = repro(['audit', ...args, '--allow-errors', '--check-observer', '--json', '--out', out], {cwd: repo, timeoutMs: 600_000})
    assert.equal(r.status, 0, r.stdout.slice(-3000) + r.stderr.slice(-3000))
    const s = script(JSON.parse(r.stdout) as Report)
    assert.equal(s.step_definition, 'backward')
    assert.equal(s.steps_recorded, 5)
    assert.deepEqual(
      s.notebook!.errors.map((e) => e.cell),
      [8],
    )
    assert.deepEqual(
      s.notebook!.skipped_magics.map((m) => [m.cell, m.magic]),
      [[2, '%matplotlib inline']],
    )
    assert.equal(s.observer_check!.equal, true)
    // the raw tensors carry the notebook's variable names; each step records the cell it ran in
    const trace = JSON.parse(readFileSync(path.join(out, 't1-script-r1', 'trace.json'), 'utf8')) as {
      steps: {step: number | string; cell?: number; entries: {name: string}[]}[]
    }
    const step0 = trace.steps.find((x) => x.step === 0)!
    assert.equal(step0.cell, 10)
    assert.deepEqual(
      step0.entries
        .filter((e) => e.name.startsWith('param/'))
        .map((e) => e.name)
        .sort(),
      ['param/W1', 'param/W2', 'param/b1', 'param/b2'],
    )
  })

  test('a notebook with magics, a shell line and a cell magic on an image with IPython: they go through IPython, traced', () => {
    const dir = tmpDir()
    const cells = [
      '%matplotlib inline\nimport torch\nimport matplotlib.pyplot as plt\ntorch.manual_seed(0)\n',
      "files = !ls\nassert 'magics.ipynb' in files, files\n",
      "%%capture captured\nprint('hidden')\n",
      "assert captured.stdout == 'hidden\\n', captured.stdout\n",
      'w = torch.randn(3, requires_grad=True)\nfor i in range(4):\n    loss = (w ** 2).sum()\n    loss.backward()\n    with torch.no_grad():\n        w -= 0.1 * w.grad\n        w.grad = None\nplt.plot([1, 2])\n',
    ]
    writeFileSync(
      path.join(dir, 'magics.ipynb'),
      JSON.stringify({
        nbformat: 4,
        nbformat_minor: 5,
        metadata: {kernelspec: {name: 'python3', display_name: 'Python 3', language: 'python'}},
        cells: cells.map((source, i) => ({cell_type: 'code', id: `c${i}`, metadata: {}, execution_count: null, outputs: [], source})),
      }),
    )
    const out = tmpDir()
    const report = audit(
      ['--script', 'magics.ipynb', '--image', 'repro-fixture:notebook-ipython', '--max-steps', '3', '--repeats', '1'],
      dir,
      0,
      out,
    )
    const s = script(report)
    assert.equal(s.notebook!.ipython, true)
    assert.equal(s.notebook!.cells_run, 5)
    assert.deepEqual(s.notebook!.skipped_magics, [])
    assert.equal(s.steps_recorded, 3)
    const trace = JSON.parse(readFileSync(path.join(out, 't1-script-r1', 'trace.json'), 'utf8')) as {
      steps: {step: number | string; entries: {name: string}[]}[]
    }
    assert.deepEqual(
      trace.steps.find((x) => x.step === 0)!.entries.map((e) => e.name),
      ['loss', 'grad/w', 'param/w'],
    )
  })
})
