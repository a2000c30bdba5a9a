// The example repositories under examples/ are real, runnable training code, independent of
// repro: each is run here exactly as its README says, with plain python (no probe, no tracer),
// and must exit 0 and print a plausible final loss. The notebook cannot run under plain python:
// its case checks that lecture.ipynb is a well-formed nbformat 4 notebook instead.
//
// Each example runs in a copy of its folder (gpt-repo's prepare step writes its gitignored .bin
// files there, never into the working tree other tests read).
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {cpSync, existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {PYTHON, ROOT, tmpDir} from './helpers.js'
import {needs} from './prereqs.js'

const EXAMPLES = path.join(ROOT, 'examples')

/** A copy of examples/<name>, without build leftovers or generated data. */
function copyOf(name: string): string {
  const src = path.join(EXAMPLES, name)
  const dest = path.join(tmpDir(`repro-example-${name}-`), name)
  cpSync(src, dest, {
    recursive: true,
    filter: (p) => !/(__pycache__|\.bin$|meta\.json$)/.test(path.relative(src, p)),
  })
  return dest
}

/** `python3 <args>` in `cwd`, as the README says; asserts exit 0 and returns stdout. */
function run(cwd: string, args: string[]): string {
  const r = spawnSync(PYTHON, args, {cwd, encoding: 'utf8', timeout: 120_000})
  assert.equal(r.status, 0, `python3 ${args.join(' ')} in ${cwd}: exit ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** The number in the last line matching `re` (its first group). */
function lastNumber(out: string, re: RegExp): number {
  const all = [...out.matchAll(new RegExp(re.source, 'gm'))]
  assert.ok(all.length > 0, `no line matching ${re} in:\n${out}`)
  const n = Number(all.at(-1)![1])
  assert.ok(Number.isFinite(n), `${all.at(-1)![0]}: not a finite number`)
  return n
}

/** Each example folder is its own project root: a repro.config.json naming an entry point that exists. */
function assertConfig(dir: string): void {
  const config = JSON.parse(readFileSync(path.join(dir, 'repro.config.json'), 'utf8')) as {script: {path: string; args?: unknown[]}}
  assert.ok(existsSync(path.join(dir, config.script.path)), `repro.config.json names ${config.script.path}, which is not there`)
  assert.ok(existsSync(path.join(dir, 'README.md')))
}

describe('the example repositories run with plain python (no repro)', {skip: needs('torch')}, () => {
  test('gpt-repo: prepare the data, then train.py config/train_tiny.py; the validation loss falls', () => {
    const dir = copyOf('gpt-repo')
    assertConfig(dir)
    run(dir, ['data/tiny/prepare.py'])
    assert.ok(existsSync(path.join(dir, 'data', 'tiny', 'train.bin')))
    const out = run(dir, ['train.py', 'config/train_tiny.py'])
    assert.match(out, /^config file: config\/train_tiny\.py$/m, 'configurator.py read the config file')
    const first = Number(/^step 0: train loss [\d.]+, val loss ([\d.]+)$/m.exec(out)?.[1])
    const best = lastNumber(out, /^best val loss ([\d.]+)$/)
    // 51 characters: an untrained model is near ln(51) = 3.93; 40 iterations get below 3.3
    assert.ok(first > 3.5 && first < 4.5, `first val loss ${first}`)
    assert.ok(best < first - 0.5 && best > 1, `best val loss ${best} (first ${first})`)
  })

  test('word-lm: main.py with hand-written SGD, and with --optimizer adamw; both beat a uniform guess', () => {
    const dir = copyOf('word-lm')
    assertConfig(dir)
    // 71 words: guessing uniformly scores ln(71) = 4.26
    for (const args of [['main.py'], ['main.py', '--optimizer', 'adamw', '--lr', '0.003']]) {
      const out = run(dir, args)
      assert.equal((out.match(/\| end of epoch/g) ?? []).length, 3, out)
      const best = lastNumber(out, /^\| End of training \| best valid loss\s+([\d.]+)/)
      assert.ok(best > 1 && best < 4.26, `${args.join(' ')}: best valid loss ${best}`)
    }
  })

  test('poly-regression: fit.py (unseeded) ends with a lower loss than at step 49', () => {
    const dir = copyOf('poly-regression')
    assertConfig(dir)
    const out = run(dir, ['fit.py'])
    const at49 = lastNumber(out, /^49 ([\d.e+-]+)$/)
    const final = lastNumber(out, /^final loss ([\d.]+)$/)
    assert.ok(final > 0 && final < at49, `final loss ${final}, at step 49 ${at49}`)
    assert.match(out, /^Result: y = \S+ \+ \S+ x \+ \S+ x\^2 \+ \S+ x\^3$/m)
  })

  test('sine-lbfgs: train.py, three L-BFGS steps; the test loss ends small', () => {
    const dir = copyOf('sine-lbfgs')
    assertConfig(dir)
    const out = run(dir, ['train.py'])
    assert.equal((out.match(/^STEP: /gm) ?? []).length, 3)
    const final = lastNumber(out, /^final test loss ([\d.]+)$/)
    assert.ok(final >= 0 && final < 0.01, `final test loss ${final}`)
  })
})

describe('the example notebook (plain python cannot run an .ipynb)', () => {
  test('lecture.ipynb is nbformat 4 JSON: code cells with no outputs, a %matplotlib inline cell, a cell that raises', () => {
    const dir = path.join(EXAMPLES, 'notebook')
    assertConfig(dir)
    interface Cell {
      cell_type: string
      id: string
      source: string[]
      metadata: object
      outputs?: unknown[]
      execution_count?: number | null
    }
    const nb = JSON.parse(readFileSync(path.join(dir, 'lecture.ipynb'), 'utf8')) as {
      nbformat: number
      nbformat_minor: number
      metadata: object
      cells: Cell[]
    }
    assert.equal(nb.nbformat, 4)
    assert.ok(nb.nbformat_minor >= 5, 'cell ids need nbformat 4.5')
    assert.equal(typeof nb.metadata, 'object')
    const ids = new Set<string>()
    for (const cell of nb.cells) {
      assert.match(cell.id, /^[a-zA-Z0-9_-]{1,64}$/)
      assert.ok(!ids.has(cell.id), `duplicate cell id ${cell.id}`)
      ids.add(cell.id)
      assert.ok(['markdown', 'code'].includes(cell.cell_type), cell.cell_type)
      assert.ok(Array.isArray(cell.source) && cell.source.every((l) => typeof l === 'string'))
      assert.equal(typeof cell.metadata, 'object')
      if (cell.cell_type === 'code') {
        assert.deepEqual(cell.outputs, [])
        assert.equal(cell.execution_count, null)
      }
    }
    const code = nb.cells.filter((c) => c.cell_type === 'code').map((c) => c.source.join(''))
    assert.match(code[0]!, /^%matplotlib inline$/m)
    assert.match(code[0]!, /torch\.manual_seed\(/)
    const raises = code.findIndex((s) => s.includes("this raises: shapes don't match"))
    const trains = code.findIndex((s) => s.includes('.backward()'))
    assert.ok(raises > 0 && trains > raises, 'the raising cell comes before the training loop')
    assert.ok(code.some((s) => s.includes('plt.plot(losses)')))
    const points = readFileSync(path.join(dir, 'points.txt'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
    assert.ok(points.length >= 20 && points.every((l) => /^-?[\d.]+ -?[\d.]+ [01]$/.test(l)), 'points.txt: x1 x2 label')
  })
})
