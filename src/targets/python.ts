// The local-python target: runs the probe with a given interpreter (venv, conda env, system
// python) in a fresh temp dir with a clean environment and a timeout on the process tree.

import {promises as fs, constants as fsc} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {probeRoot} from './probe-path.js'
import {spawnCapped} from './process.js'
import type {ProbeJob, ProbeResult, Target, TargetIdentity} from './target.js'

const CLEAN_PATH = '/usr/local/bin:/usr/bin:/bin'

export class PythonTarget implements Target {
  readonly kind = 'python' as const
  readonly name: string

  constructor(readonly interpreter: string) {
    this.name = `python:${interpreter}`
  }

  async identify(): Promise<TargetIdentity> {
    await this.checkInterpreter()
    const real = await fs.realpath(this.interpreter)
    const stat = await fs.stat(real)
    return {kind: 'python', reference: this.interpreter, details: {path: this.interpreter, real_path: real, size: stat.size, mtime: stat.mtime.toISOString()}}
  }

  private async checkInterpreter(): Promise<void> {
    try {
      await fs.access(this.interpreter, fsc.X_OK)
    } catch {
      const exists = await fs.stat(this.interpreter).then(() => true, () => false)
      throw new ReproError(exists ? `${this.interpreter} is not executable` : `${this.interpreter} does not exist`, {
        subject: this.name,
        hint: 'pass the path of a python interpreter that has torch, e.g. --python /usr/bin/python3 (see `repro doctor`)',
      })
    }
  }

  async runProbeImpl(job: ProbeJob): Promise<ProbeResult> {
    await this.checkInterpreter()
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'repro-python-'))
    try {
      const env: Record<string, string> = {
        PATH: CLEAN_PATH,
        HOME: work,
        LANG: 'C.UTF-8',
        PYTHONPATH: probeRoot(),
        PYTHONDONTWRITEBYTECODE: '1',
        PYTHONHASHSEED: '0',
        PYTHONNOUSERSITE: '1',
        ...job.env,
      }
      const args = ['-m', 'repro_probe', job.mode, '--config', path.join(job.inputDir, 'config.json'), '--out', job.outDir]
      const r = await spawnCapped(this.interpreter, args, {cwd: work, env, timeoutMs: job.timeoutMs}).catch((e: NodeJS.ErrnoException) => {
        throw new ReproError(`cannot start ${this.interpreter}: ${e.code ?? e.message}`, {subject: this.name, hint: 'pass the path of a working python interpreter'})
      })
      if (r.timedOut) {
        throw new ReproError(`the probe timed out after ${Math.round(job.timeoutMs / 1000)} s and was killed`, {subject: this.name, hint: 'raise --timeout, or lower --epochs / --rows'})
      }
      if (r.signal === 'SIGKILL') {
        throw new ReproError('the probe was killed (SIGKILL; out of memory?)', {subject: this.name, hint: 'free memory or lower --rows / --batch-size'})
      }
      return {exitCode: r.exitCode, seconds: r.seconds, stderrTail: r.stderrTail}
    } finally {
      await fs.rm(work, {recursive: true, force: true})
    }
  }
}
