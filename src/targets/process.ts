// Child processes with a hard timeout that kills the whole process tree, a capped stderr
// tail, and a registry so Ctrl-C / SIGTERM can take every running probe down with us.

import {spawn} from 'node:child_process'

const STDERR_CAP = 64 * 1024

export interface SpawnResult {
  exitCode: number
  signal: NodeJS.Signals | null
  timedOut: boolean
  seconds: number
  stdout: string
  /** raw stdout, only with `binaryStdout` (e.g. a tar stream from `docker cp … -`) */
  stdoutBytes: Buffer | null
  /** stdout went past its cap and was cut */
  stdoutTruncated: boolean
  stderrTail: string
}

export interface SpawnOptions {
  cwd?: string
  env: Record<string, string>
  timeoutMs: number
  /** keep at most this many bytes of stdout (default 1 MiB) */
  stdoutCap?: number
  /** collect stdout as bytes instead of text */
  binaryStdout?: boolean
  /** bytes written to the child's stdin (then closed); default: no stdin */
  input?: Buffer
  /** kill the child once stdout reaches its cap (when only the first bytes matter) */
  stopAtCap?: boolean
  /** called once the child has been spawned */
  onSpawn?: () => void
}

const running = new Set<number>()

/** Kill every process group we started; used by signal handlers and tests. */
export function killAllChildren(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const pid of running) {
    try {
      process.kill(-pid, signal)
    } catch {
      // already gone
    }
  }
}

export function runningChildren(): number {
  return running.size
}

export function spawnCapped(command: string, args: string[], opts: SpawnOptions): Promise<SpawnResult> {
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    // detached: the child leads its own process group, so a timeout kills its whole tree
    // (python's worker threads are threads, but a probe could fork helpers).
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    })
    opts.onSpawn?.()
    if (opts.input && child.stdin) {
      // a child that exits before reading everything closes the pipe: not our error to raise
      child.stdin.on('error', () => undefined)
      child.stdin.end(opts.input)
    }
    const chunks: Buffer[] = []
    let stdoutBytes = 0
    let stdoutTruncated = false
    let stderr = ''
    let timedOut = false
    const stdoutCap = opts.stdoutCap ?? 1024 * 1024
    child.stderr!.setEncoding('utf8')
    child.stdout!.on('data', (d: Buffer) => {
      if (stdoutBytes + d.length > stdoutCap) {
        stdoutTruncated = true
        d = d.subarray(0, Math.max(0, stdoutCap - stdoutBytes))
      }
      if (d.length > 0) {
        chunks.push(d)
        stdoutBytes += d.length
      }
      if (opts.stopAtCap && stdoutBytes >= stdoutCap && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL')
        } catch {
          // already gone
        }
      }
    })
    child.stderr!.on('data', (d: string) => {
      stderr += d
      if (stderr.length > 2 * STDERR_CAP) stderr = stderr.slice(-STDERR_CAP)
    })
    if (child.pid !== undefined) running.add(child.pid)
    const timer = setTimeout(() => {
      timedOut = true
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL')
        } catch {
          child.kill('SIGKILL')
        }
      }
    }, opts.timeoutMs)
    child.on('error', (err) => {
      clearTimeout(timer)
      if (child.pid !== undefined) running.delete(child.pid)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (child.pid !== undefined) {
        running.delete(child.pid)
        // Reap anything the child left behind in its group.
        try {
          process.kill(-child.pid, 'SIGKILL')
        } catch {
          // group already empty
        }
      }
      const out = Buffer.concat(chunks)
      resolve({
        exitCode: code ?? (signal ? 128 + (signalNumber(signal) ?? 0) : 1),
        signal,
        timedOut,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
        stdout: opts.binaryStdout ? '' : out.toString('utf8'),
        stdoutBytes: opts.binaryStdout ? out : null,
        stdoutTruncated,
        stderrTail: stderr.slice(-STDERR_CAP),
      })
    })
  })
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  return ({SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGSEGV: 11, SIGABRT: 6} as Record<string, number>)[signal]
}
