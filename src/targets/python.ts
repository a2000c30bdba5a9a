// The local-python target: runs the probe with a given interpreter (venv, conda env, system
// python) in a fresh temp dir with a clean environment and a timeout on the process tree.

import {promises as fs, constants as fsc} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {probePythonPath, probeRoot} from './probe-path.js'
import {DistributionsError, pythonDistributions} from './python-identity.js'
import {spawnCapped} from './process.js'
import type {ProbeJob, ProbeOutcome, Target, TargetIdentity} from './target.js'

const CLEAN_PATH = '/usr/local/bin:/usr/bin:/bin'

export class PythonTarget implements Target {
  readonly kind = 'python' as const
  readonly name: string

  /** `memoDir`: where the installed distributions are kept between runs (python-identity.ts) */
  constructor(
    readonly interpreter: string,
    private readonly opts: {memoDir?: string} = {},
  ) {
    this.name = `python:${interpreter}`
  }

  async identify(): Promise<TargetIdentity> {
    await this.checkInterpreter()
    const real = await fs.realpath(this.interpreter)
    const stat = await fs.stat(real)
    return {
      kind: 'python',
      reference: this.interpreter,
      details: {path: this.interpreter, real_path: real, size: stat.size, mtime: stat.mtime.toISOString()},
    }
  }

  async cacheIdentity(): Promise<Record<string, unknown>> {
    await this.checkInterpreter()
    const real = await fs.realpath(this.interpreter)
    const stat = await fs.stat(real)
    // Installed distributions (names carry versions) with their mtimes, without importing
    // torch: a pip or apt upgrade changes this, so the cache never reuses a stale run.
    const distributions = await pythonDistributions(this.interpreter, real, {
      env: {PATH: CLEAN_PATH, LANG: 'C.UTF-8'},
      ...(this.opts.memoDir ? {memoDir: this.opts.memoDir} : {}),
    }).catch((e: unknown) => {
      if (!(e instanceof DistributionsError)) throw e
      throw new ReproError(`cannot list the installed packages of ${this.interpreter}`, {
        subject: this.name,
        hint: 'check that the interpreter runs, or pass --no-cache',
      })
    })
    return {
      kind: 'python',
      real_path: real,
      size: stat.size,
      mtime: stat.mtimeMs,
      distributions: distributions.digest,
    }
  }

  private async checkInterpreter(): Promise<void> {
    try {
      await fs.access(this.interpreter, fsc.X_OK)
    } catch {
      const exists = await fs.stat(this.interpreter).then(
        () => true,
        () => false,
      )
      throw new ReproError(exists ? `${this.interpreter} is not executable` : `${this.interpreter} does not exist`, {
        subject: this.name,
        hint: 'pass the path of a python interpreter that has torch, e.g. --python /usr/bin/python3 (see `repro doctor`)',
      })
    }
  }

  async runProbeImpl(job: ProbeJob): Promise<ProbeOutcome> {
    await this.checkInterpreter()
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'repro-python-'))
    try {
      const env: Record<string, string> = {
        PATH: CLEAN_PATH,
        HOME: work,
        LANG: 'C.UTF-8',
        PYTHONDONTWRITEBYTECODE: '1',
        PYTHONHASHSEED: '0',
        PYTHONNOUSERSITE: '1',
        // torch.compile's kernels go here, removed with the work directory
        REPRO_PROBE_SCRATCH: path.join(work, 'scratch'),
        ...job.env,
        PYTHONPATH: probePythonPath(job.env, probeRoot()),
      }
      const args = ['-m', 'repro_probe', job.mode, '--config', path.join(job.inputDir, 'config.json'), '--out', job.outDir]
      const r = await spawnCapped(this.interpreter, args, {
        cwd: work,
        env,
        timeoutMs: job.timeoutMs,
        ...(job.onStarted ? {onSpawn: job.onStarted} : {}),
      }).catch((e: NodeJS.ErrnoException) => {
        throw new ReproError(`cannot start ${this.interpreter}: ${e.code ?? e.message}`, {
          subject: this.name,
          hint: 'pass the path of a working python interpreter',
        })
      })
      const ended = {seconds: r.seconds, stderrTail: r.stderrTail}
      if (r.timedOut) return {kind: 'timed-out', limitSeconds: Math.round(job.timeoutMs / 1000), ...ended}
      if (r.signal === 'SIGKILL') return {kind: 'killed', signal: 'SIGKILL', ...ended}
      return {kind: 'exited', exitCode: r.exitCode, ...ended}
    } finally {
      await fs.rm(work, {recursive: true, force: true})
    }
  }
}
