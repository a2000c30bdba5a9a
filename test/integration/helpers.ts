// Helpers for integration tests: run the real CLI (bin/run.js) as a user would.

import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const made: string[] = []
// Every directory tmpDir made goes when the test file's process ends: a suite run left ~300 MB
// of runs, caches and reports in the temp directory, each run more.
process.on('exit', () => {
  for (const dir of made) rmSync(dir, {recursive: true, force: true})
})

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const PYTHON = process.env['REPRO_TEST_PYTHON'] ?? '/usr/bin/python3'
/**
 * When this test run started (scripts/run-tests.mjs sets it; the epoch when a file runs alone):
 * every repro process a test starts carries it, so zz-leftovers counts only this run's leftovers.
 */
export const SUITE_START = process.env['REPRO_TEST_SUITE_START'] ?? new Date(0).toISOString()
/**
 * The suite-wide run cache (scripts/run-tests.mjs makes one per test run; a file run alone gets
 * its own): tests about reports, verdicts and attribution pass it as `cacheDir`, so a run one of
 * them trained (same target, config, repeat) is not trained again by the next. Never for tests
 * about the engine path (timeouts, OOM, Ctrl-C, leftovers, work area, full disk, remote engines,
 * entrypoints): each repro call there keeps its own empty cache. docs/testing.md lists the users.
 */
export const SHARED_CACHE = process.env['REPRO_TEST_SHARED_CACHE'] ?? tmpDir('repro-shared-cache-')
/** The AVX2-host switch (REPRO_TEST_CPU=avx2 in scripts/run-tests.mjs): passed on to every repro process. */
const EMULATE_CPU = process.env['REPRO_EMULATE_CPU']

export interface CliResult {
  /** the repro process's pid: its containers carry it in their repro.pid label */
  pid: number
  status: number | null
  stdout: string
  stderr: string
}

/**
 * Run the CLI. Each call gets its own empty run cache unless `cacheDir` is given, so a test
 * of a failure (timeout, OOM, Ctrl-C) never gets a cached success instead.
 */
export function repro(
  args: string[],
  opts: {cwd?: string; timeoutMs?: number; cacheDir?: string; env?: Record<string, string>} = {},
): CliResult {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), ...args], {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 300_000,
    env: testEnv(opts),
  })
  return {pid: r.pid ?? -1, status: r.status, stdout: r.stdout, stderr: r.stderr}
}

/**
 * Variables of the machine running the tests that change what repro prints or where it keeps
 * things: a test sets the ones it needs explicitly, so results never depend on the caller's
 * shell (a CI job inside GitHub Actions, a narrow terminal, a user's cache settings).
 */
const HOST_DEPENDENT = /^(GITHUB_|REPRO_|XDG_CACHE_HOME$|COLUMNS$|LINES$|FORCE_COLOR$|NO_COLOR$|DEBUG$|OCLIF_)/

/** The environment a repro child process gets: the caller's, minus host-dependent variables, plus a fresh cache. */
export function testEnv(opts: {cacheDir?: string; env?: Record<string, string>} = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !HOST_DEPENDENT.test(k)) env[k] = v
  return {
    ...env,
    NO_COLOR: '1',
    REPRO_CACHE_DIR: opts.cacheDir ?? tmpDir('repro-cache-'),
    REPRO_TEST_SUITE_START: SUITE_START,
    ...(EMULATE_CPU ? {REPRO_EMULATE_CPU: EMULATE_CPU} : {}),
    ...opts.env,
  }
}

/**
 * A python whose every run blocks for an hour: a target that cannot finish, so a timeout test
 * never races the machine's speed. `marker` is in its command line, to check nothing outlives
 * the kill.
 */
export function hangingPython(marker: string): string {
  const dir = tmpDir('repro-hang-')
  const p = path.join(dir, 'python3')
  writeFileSync(p, `#!/bin/sh\nexec ${PYTHON} -c 'import time; time.sleep(3600)  # ${marker}'\n`)
  chmodSync(p, 0o755)
  return p
}

/** Processes whose command line contains `text` (pgrep -f), other than pgrep itself. */
export function processesMatching(text: string): string[] {
  const r = spawnSync('pgrep', ['-f', text], {encoding: 'utf8'})
  return r.stdout.split('\n').filter((l) => l.trim() && Number(l) !== r.pid)
}

export function tmpDir(prefix = 'repro-it-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  made.push(dir)
  return dir
}

/**
 * A real python without torch: the same interpreter started with -S (no site-packages), as a
 * venv without system packages would be. On this machine the first python3 on PATH is one too.
 */
export function pythonWithoutTorch(): string {
  const dir = tmpDir('repro-notorch-')
  const p = path.join(dir, 'python3')
  writeFileSync(p, `#!/bin/sh\nexec ${PYTHON} -S "$@"\n`)
  chmodSync(p, 0o755)
  return p
}

/**
 * Terminal output with its wrapping undone (each line break and the indentation after it
 * become one space): what a test matches a sentence against, whatever the width it wrapped at.
 */
export function unwrap(text: string): string {
  return text.replace(/\n[ \t]*/g, ' ')
}

export type EngineName = 'docker' | 'podman'

/**
 * Why `engine` cannot run the container tests here (not installed, not answering, fixture
 * images missing), or null when it can.
 */
export function engineMissing(engine: EngineName, images: string[]): string | null {
  const v = spawnSync(engine, ['version', '--format', '{{.Server.Version}}'], {encoding: 'utf8', timeout: 30_000})
  if (v.error) return `${engine} is not installed (bash scripts/bootstrap.sh --full installs it)`
  if (v.status !== 0) return `${engine} does not answer: ${(v.stderr ?? '').trim().split('\n').pop()}`
  const i = spawnSync(engine, ['image', 'inspect', ...images], {encoding: 'utf8', timeout: 60_000})
  if (i.status !== 0)
    return `fixture images missing in ${engine}: run bash scripts/bootstrap.sh --full (it builds them${engine === 'podman' ? ' and loads them into podman' : ''})`
  return null
}

/**
 * Options for a test that needs something this host may lack: skipped, with the reason, when it
 * is missing — except under CI, where the test runs and fails naming what is missing.
 */
export function needs(missing: string | null): {skip?: string} {
  return missing && !process.env['CI'] ? {skip: missing} : {}
}

/** First line of a test gated by `needs`: under CI a missing prerequisite is a failure. */
export function assertPrerequisite(missing: string | null): void {
  if (missing) throw new Error(`prerequisite missing (CI requires it): ${missing}`)
}

/**
 * Probe containers left by one repro process (its pid label) or one host name, on one engine;
 * never the containers of other repro processes that happen to share this engine.
 */
export function reproContainers(engine: EngineName, owner: {pid: number} | {host: string}): string[] {
  const filter = 'pid' in owner ? `label=repro.pid=${owner.pid}` : `label=repro.host=${owner.host}`
  const r = spawnSync(engine, ['ps', '-a', '--filter', 'label=repro', '--filter', filter, '--format', '{{.ID}}'], {encoding: 'utf8'})
  if (r.status !== 0) throw new Error(`${engine} ps failed: ${r.stderr}`)
  return r.stdout.split('\n').filter(Boolean)
}

/**
 * Watch the engine's container-create events from now on (a stream: the daemon keeps only its
 * last 256 events, too few to look back on while other tests run); `created(owner)` stops
 * watching and returns the IDs of the containers that repro process created.
 */
export async function watchContainerCreates(engine: EngineName): Promise<{created(owner: {pid: number}): Promise<string[]>}> {
  const args =
    engine === 'docker'
      ? [
          'events',
          '--filter',
          'type=container',
          '--filter',
          'event=create',
          '--format',
          '{{.ID}} repro.pid:{{index .Actor.Attributes "repro.pid"}} ',
        ]
      : ['events', '--filter', 'event=create', '--format', '{{.ID}} {{.Attributes}}']
  const child = spawn(engine, args, {stdio: ['ignore', 'pipe', 'ignore']})
  let out = ''
  child.stdout!.on('data', (d) => {
    out += d
  })
  // subscribed before anything is created
  await new Promise((resolve) => setTimeout(resolve, 1000))
  return {
    async created(owner) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      child.kill()
      return out
        .split('\n')
        .filter((l) => new RegExp(`repro\\.pid:${owner.pid}[\\] ]`).test(l))
        .map((l) => l.split(' ')[0]!)
    },
  }
}

/** `repro audit` of repro-fixture:hang (a probe that never finishes) on `engine`, just spawned. */
export function spawnHangingAudit(engine: EngineName): ChildProcess {
  return spawn(
    process.execPath,
    [path.join(ROOT, 'bin', 'run.js'), 'audit', '--engine', engine, '--image', 'repro-fixture:hang', '--repeats', '1', '--out', tmpDir()],
    {stdio: 'ignore', env: testEnv()},
  )
}

/**
 * `repro audit` of repro-fixture:hang (a probe that never finishes) on `engine`, started in the
 * background; resolves once its probe container runs, so the run is certainly still going.
 */
export async function startHangingAudit(engine: EngineName): Promise<{child: ChildProcess; owner: {pid: number}}> {
  const child = spawnHangingAudit(engine)
  const owner = {pid: child.pid!}
  if (!(await waitFor(() => reproContainers(engine, owner).length > 0, 180_000))) throw new Error('no probe container started')
  return {child, owner}
}

export function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms
  while (Date.now() < until) {
    if (check()) return true
    await sleep(250)
  }
  return false
}
