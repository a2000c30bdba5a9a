// A file or module the script misses in the target, looked up on the host (missing-input.ts),
// and the one line explainProbeError makes of it.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {explainMissingInput, type ScriptProjectContext} from '../../../src/targets/missing-input.js'
import {explainProbeError, type Target} from '../../../src/targets/target.js'

const base = mkdtempSync(path.join(os.tmpdir(), 'repro-missing-'))
process.on('exit', () => rmSync(base, {recursive: true, force: true}))
const root = path.join(base, 'repo')
function write(rel: string, text = 'x') {
  mkdirSync(path.dirname(path.join(base, rel)), {recursive: true})
  writeFileSync(path.join(base, rel), text)
}
write('repo/train.py')
write('repo/data/train/part0.bin')
write('repo/data/val.bin')
write('repo/model.py')
write('repo/.venv/lib/x.py')
write('repo/helpers/__init__.py')
write('shared/common.py')

const ctx = (over: Partial<ScriptProjectContext> = {}): ScriptProjectContext => ({
  root,
  git: true,
  copied: new Set(['train.py', 'data/val.bin']),
  skipped: [{rel: '.venv', reason: 'a virtual environment'}],
  scriptDir: root,
  cwd: root,
  source: 'flags',
  ...over,
})
const target = {kind: 'python', name: 'python:/usr/bin/python3'} as Target

describe('a missing file or module, named with its fix', () => {
  test('a file git ignores: the topmost folder absent from the copy is what --include adds', async () => {
    const m = await explainMissingInput({type: 'missing_file', message: 'm', path: 'data/train/part0.bin'}, ctx())
    assert.deepEqual(m, {
      message: 'the script needs data/train/part0.bin, which exists on the host but was not copied (git ignores it)',
      hint: 'add it with --include data/train',
    })
    const top = await explainMissingInput(
      {type: 'missing_file', message: 'm', path: 'data/train/part0.bin'},
      ctx({copied: new Set(['train.py'])}),
    )
    assert.equal(top!.hint, 'add it with --include data')
  })

  test('a file under a skipped folder says why; from repro.config.json the hint names script.include', async () => {
    const m = await explainMissingInput({type: 'missing_file', message: 'm', path: '.venv/lib/x.py'}, ctx({source: 'config'}))
    assert.equal(
      m!.message,
      'the script needs .venv/lib/x.py, which exists on the host but was not copied (.venv is a virtual environment)',
    )
    assert.equal(m!.hint, 'add ".venv" to script.include in repro.config.json')
  })

  test('a script that checks for its data itself and exits naming it: the path in its message is looked up too', async () => {
    const message = 'SystemExit: data/train/part0.bin is missing: run python3 prepare.py first'
    const m = await explainMissingInput({type: 'script_error', message}, ctx({cwd: path.join(root, 'data')}))
    assert.equal(m, null, 'relative to the working directory (data/), data/train/part0.bin is not on the host')
    const found = await explainMissingInput({type: 'script_error', message}, ctx())
    assert.deepEqual(found, {
      message: `${message}: data/train/part0.bin, which exists on the host but was not copied (git ignores it)`,
      hint: 'add it with --include data/train',
    })
    const copied = 'ValueError: bad header in data/val.bin and model.py'
    assert.equal(
      await explainMissingInput({type: 'script_error', message: copied}, ctx({copied: new Set(['data/val.bin', 'model.py'])})),
      null,
    )
  })

  test('nothing more to say: copied, absent on the host too, or absolute in the target', async () => {
    for (const p of ['data/val.bin', 'data/nope.bin', '/etc/nope', '../up.txt'])
      assert.equal(await explainMissingInput({type: 'missing_file', message: 'm', path: p}, ctx()), null, p)
  })

  test('a module beside the script that was not copied; a package folder; one above the root suggests --project', async () => {
    const m = await explainMissingInput({type: 'missing_module', message: 'm', module: 'model'}, ctx())
    assert.deepEqual(m, {
      message: 'the script imports model, which exists on the host (model.py) but was not copied (git ignores it)',
      hint: 'add it with --include model.py',
    })
    const pkg = await explainMissingInput({type: 'missing_module', message: 'm', module: 'helpers'}, ctx())
    assert.equal(pkg!.hint, 'add it with --include helpers')
    const up = await explainMissingInput({type: 'missing_module', message: 'm', module: 'common'}, ctx({root: path.join(base, 'repo')}))
    assert.equal(up, null, 'shared/ is a sibling, not an ancestor')
    write('common2.py')
    const above = await explainMissingInput({type: 'missing_module', message: 'm', module: 'common2'}, ctx())
    assert.match(above!.message, /^the script imports common2, found on the host at .*common2\.py, outside the project .*repo$/)
    assert.equal(above!.hint, `make the project a folder that holds both: --project ${base}`)
    assert.equal(await explainMissingInput({type: 'missing_module', message: 'm', module: 'numpyy'}, ctx()), null)
  })

  test('explainProbeError: the host finding wins over the probe message; without one, the type hints stay', async () => {
    const err = {
      type: 'missing_file',
      message: 'the script could not open data/train/part0.bin (FileNotFoundError)',
      path: 'data/train/part0.bin',
    }
    const found = await explainMissingInput(err, ctx())
    const result = {exitCode: 1, seconds: 1, stderrTail: ''}
    assert.equal(
      explainProbeError(target, err, result, found).oneLine(),
      'python:/usr/bin/python3: the script needs data/train/part0.bin, which exists on the host but was not copied (git ignores it) — add it with --include data/train',
    )
    assert.match(
      explainProbeError(target, err, result).oneLine(),
      /could not open data\/train\/part0\.bin .* — the file is not in the project copy/,
    )
    const mod = {type: 'missing_module', message: "the script imports module 'foo', which this target lacks", module: 'foo'}
    assert.match(explainProbeError(target, mod, result).oneLine(), /— install that package into the interpreter, or add the folder/)
  })
})
