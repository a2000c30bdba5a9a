// Helpers for integration tests: run the real CLI (bin/run.js) as a user would.

import {spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync, chmodSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..')
export const PYTHON = process.env['REPRO_TEST_PYTHON'] ?? '/usr/bin/python3'

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
export function repro(args: string[], opts: {cwd?: string; timeoutMs?: number; cacheDir?: string; env?: Record<string, string>} = {}): CliResult {
  const env = {...process.env, NO_COLOR: '1', REPRO_CACHE_DIR: opts.cacheDir ?? tmpDir('repro-cache-'), ...opts.env}
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'run.js'), ...args], {cwd: opts.cwd ?? ROOT, encoding: 'utf8', timeout: opts.timeoutMs ?? 300_000, env})
  return {pid: r.pid ?? -1, status: r.status, stdout: r.stdout, stderr: r.stderr}
}

export function tmpDir(prefix = 'repro-it-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix))
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
