// --help of every command fits an 80- and a 120-column terminal (oclif indents flag text past
// its own wrap width; bin/run.js gives it the terminal's width less that margin).
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readdirSync} from 'node:fs'
import path from 'node:path'
import {ROOT, repro} from './helpers.js'

const COMMANDS = readdirSync(path.join(ROOT, 'src', 'commands'))
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))

describe('help fits the terminal', () => {
  for (const width of [80, 120]) {
    test(`repro --help and every command's --help within ${width} columns`, () => {
      for (const args of [['--help'], ...COMMANDS.map((c) => [c, '--help'])]) {
        const r = repro(args, {env: {COLUMNS: String(width)}})
        assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`)
        const longest = Math.max(...r.stdout.split('\n').map((l) => [...l].length))
        assert.ok(longest <= width, `${args.join(' ')}: a line of ${longest} columns`)
      }
    })
  }
})
