// Runs last (scripts/run-tests.mjs keeps zz-* at the end in either order): after the whole
// suite, no probe container and no work-area volume of a finished repro process is left on
// either engine. Other people's live runs may share the engines, so only leftovers whose owner
// process is gone count — except under CI, where the engines must be empty.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import os from 'node:os'
import type {EngineName} from './helpers.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function installed(engine: EngineName): boolean {
  return spawnSync(engine, ['version'], {encoding: 'utf8'}).status === 0
}

/** `ID PID HOST` rows of what `args` lists; keeps rows not owned by a live process on this host. */
function leftovers(engine: EngineName, args: string[]): string[] {
  const r = spawnSync(engine, args, {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .filter((row) => {
      const [, pid, host] = row.split(/\s+/)
      return process.env['CI'] || host !== os.hostname() || !alive(Number(pid))
    })
}

describe('nothing left behind after the whole suite', () => {
  for (const engine of ['docker', 'podman'] as EngineName[]) {
    test(`${engine}: no probe container, no work-area volume`, {
      skip: !installed(engine) && !process.env['CI'] && `${engine} is not installed`,
    }, () => {
      const label = (k: string) => (engine === 'docker' ? `{{.Label "${k}"}}` : `{{index .Labels "${k}"}}`)
      assert.deepEqual(
        leftovers(engine, ['ps', '-a', '--filter', 'label=repro', '--format', `{{.ID}} ${label('repro.pid')} ${label('repro.host')}`]),
        [],
      )
      if (engine === 'docker') {
        assert.deepEqual(
          leftovers(engine, [
            'volume',
            'ls',
            '--filter',
            'label=repro',
            '--format',
            `{{.Name}} ${label('repro.pid')} ${label('repro.host')}`,
          ]),
          [],
        )
      } else {
        // podman cannot label the work area (no volume-label in --mount): nothing dangling at all
        const r = spawnSync('podman', ['volume', 'ls', '-q', '--filter', 'dangling=true'], {encoding: 'utf8'})
        assert.deepEqual(r.stdout.split('\n').filter(Boolean), [])
      }
    })
  }
})
