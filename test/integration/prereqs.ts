// What an integration test needs from the machine, checked once: a test whose prerequisite is
// missing is skipped with the reason and the fix — except under CI=true, where the bootstrap
// installs everything, so a missing prerequisite is a failure, never a silent skip.

import {spawnSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {PYTHON} from './helpers.js'

export type Prereq = 'torch' | 'docker' | 'fixture-images' | 'chromium' | 'slurm'

export const CHROMIUM = process.env['REPRO_TEST_CHROMIUM'] ?? '/usr/bin/chromium'
export const FIXTURE_IMAGES = [
  'repro-fixture:bookworm',
  'repro-fixture:trixie',
  'repro-fixture:no-python',
  'repro-fixture:no-torch',
  'repro-fixture:hang',
  'repro-fixture:matplotlib',
  'repro-fixture:notebook-ipython',
]

const ok = (cmd: string, args: string[]) => spawnSync(cmd, args, {stdio: 'ignore', timeout: 60_000}).status === 0

const CHECKS: Record<Prereq, () => string | null> = {
  torch: () => (ok(PYTHON, ['-c', 'import torch']) ? null : `${PYTHON} cannot import torch (apt-get install python3-torch)`),
  docker: () => (ok('docker', ['info']) ? null : 'no docker engine answers (bash scripts/bootstrap.sh --full installs and starts one)'),
  'fixture-images': () =>
    ok('docker', ['image', 'inspect', ...FIXTURE_IMAGES])
      ? null
      : 'the fixture images are missing (bash fixtures/images/build.sh builds them)',
  slurm: () =>
    ok('sh', ['-c', "sinfo -h -N -o '%t' | grep -Eq '^(idle|mix|alloc)'"])
      ? null
      : 'no Slurm cluster answers (bash scripts/slurm-setup.sh starts a single-node one)',
  chromium: () => (existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set REPRO_TEST_CHROMIUM)`),
}
const memo = new Map<Prereq, string | null>()

/** `false` when every prerequisite is there (or under CI); otherwise why the test does not run. */
export function needs(...prereqs: Prereq[]): false | string {
  if (process.env['CI']) return false
  for (const p of prereqs) {
    if (!memo.has(p)) memo.set(p, CHECKS[p]())
    const why = memo.get(p)
    if (why) return `skipped: ${why}`
  }
  return false
}
