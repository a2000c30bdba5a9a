// Runs last (scripts/run-tests.mjs keeps zz-* at the end in either order): after the whole
// suite, no probe container and no work-area volume that this test run made is left on either
// engine. Other people's runs may share the engines (another `repro audit` alongside, a crashed
// one from before), so only what this run made counts: a leftover whose owner process is gone
// and that was started after the suite started (its repro.started label, scripts/run-tests.mjs
// passes REPRO_TEST_SUITE_START), or whose owner is still alive and is one of this run's (its
// environment carries this suite's REPRO_TEST_SUITE_START: a repro process the tests leaked).

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import os from 'node:os'
import {type EngineName, SUITE_START} from './helpers.js'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Is live process `pid` one of this test run's (started with this suite's REPRO_TEST_SUITE_START)? */
function ofThisRun(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`REPRO_TEST_SUITE_START=${SUITE_START}`)
  } catch {
    return false
  }
}

function installed(engine: EngineName): boolean {
  return spawnSync(engine, ['version'], {encoding: 'utf8'}).status === 0
}

/** Whether a row `ID PID HOST STARTED` that `ls`/`ps` printed is this test run's leftover. */
function isLeftover(row: string): boolean {
  const [, pid, host, started] = row.split(/\s+/)
  if (host !== os.hostname()) return false
  if (alive(Number(pid))) return ofThisRun(Number(pid))
  return !started || Date.parse(started) >= Date.parse(SUITE_START)
}

/** `ID PID HOST STARTED` rows of what `args` lists; keeps this test run's leftovers. */
function leftovers(engine: EngineName, args: string[]): string[] {
  const r = spawnSync(engine, args, {encoding: 'utf8'})
  assert.equal(r.status, 0, r.stderr)
  return r.stdout.split('\n').filter(Boolean).filter(isLeftover)
}

describe('nothing left behind after the whole suite', () => {
  for (const engine of ['docker', 'podman'] as EngineName[]) {
    test(`${engine}: no probe container, no work-area volume`, {
      skip: !installed(engine) && !process.env['CI'] && `${engine} is not installed`,
    }, () => {
      const label = (k: string) => (engine === 'docker' ? `{{.Label "${k}"}}` : `{{index .Labels "${k}"}}`)
      assert.deepEqual(
        leftovers(engine, [
          'ps',
          '-a',
          '--filter',
          'label=repro',
          '--format',
          `{{.ID}} ${label('repro.pid')} ${label('repro.host')} ${label('repro.started')}`,
        ]),
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
            `{{.Name}} ${label('repro.pid')} ${label('repro.host')} ${label('repro.started')}`,
          ]),
          [],
        )
      } else {
        // podman cannot label the work area (no volume-label in --mount): nothing dangling that
        // was made after the suite started
        const r = spawnSync('podman', ['volume', 'ls', '--filter', 'dangling=true', '--format', '{{.Name}} {{.CreatedAt}}'], {
          encoding: 'utf8',
        })
        const made = r.stdout
          .split('\n')
          .filter(Boolean)
          .filter((row) => {
            // `2026-12-02 09:51:14.67826189 +0000 UTC`
            const [name, day, time, offset] = row.split(/\s+/)
            const created = Date.parse(`${day}T${time}${(offset ?? '+0000').replace(/(\d\d)$/, ':$1')}`)
            return name && !(created < Date.parse(SUITE_START))
          })
        assert.deepEqual(made, [])
      }
    })
  }
})
