// One interface for every place the probe can run (local python now; docker/podman next).
// `runProbe` is the template method: it checks what every target must guarantee, then calls
// the target's own `runProbeImpl`.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'

export type ProbeMode = 'fingerprint' | 'train'

export interface ProbeJob {
  mode: ProbeMode
  /** holds config.json (and data.safetensors in train mode) */
  inputDir: string
  /** where the probe's artifacts must end up on the host */
  outDir: string
  timeoutMs: number
  /** environment variables for the probe (the knobs' env), on top of a clean environment */
  env: Record<string, string>
}

export interface ProbeResult {
  exitCode: number
  seconds: number
  stderrTail: string
}

export interface TargetIdentity {
  kind: 'python' | 'docker' | 'podman'
  /** what a user passes to select this target again */
  reference: string
  details: Record<string, string | number | boolean | null>
}

export interface Target {
  readonly kind: TargetIdentity['kind']
  /** Stable human name used in progress, errors and reports, e.g. `python:/usr/bin/python3`. */
  readonly name: string
  identify(): Promise<TargetIdentity>
  /**
   * What determines this target's results, cheaply: the run cache reuses a run only when this
   * is unchanged (an image's content ID; an interpreter and its installed distributions).
   */
  cacheIdentity(): Promise<Record<string, unknown>>
  runProbeImpl(job: ProbeJob): Promise<ProbeResult>
}

/** Run the probe in a target and turn every way it can fail into a one-line ReproError. */
export async function runProbe(target: Target, job: ProbeJob): Promise<ProbeResult> {
  await fs.mkdir(job.outDir, {recursive: true})
  const result = await target.runProbeImpl(job)
  await fs.writeFile(path.join(job.outDir, 'stderr.txt'), result.stderrTail)
  if (result.exitCode === 0) return result
  const probeError = await readProbeError(job.outDir)
  if (probeError) throw explainProbeError(target, probeError, result)
  throw explainCrash(target, result)
}

async function readProbeError(outDir: string): Promise<{type: string; message: string} | null> {
  try {
    const raw = JSON.parse(await fs.readFile(path.join(outDir, 'run.json'), 'utf8').then((s) => s.slice(0, 1 << 20)))
    if (raw && raw.status === 'error' && raw.error && typeof raw.error.message === 'string') {
      return {type: String(raw.error.type).slice(0, 100), message: String(raw.error.message).slice(0, 500)}
    }
  } catch {
    // no readable run.json: the probe died before writing it
  }
  return null
}

const NO_TORCH = /No module named '?torch'?/

export function explainProbeError(target: Target, err: {type: string; message: string}, result: ProbeResult): ReproError {
  if (NO_TORCH.test(err.message) || NO_TORCH.test(result.stderrTail)) return noTorch(target)
  if (err.type === 'cuda_unavailable') {
    return new ReproError('CUDA was requested but is not available', {
      subject: target.name,
      hint: 'run with --device cpu, or on a host/image with an NVIDIA GPU and CUDA-enabled PyTorch',
    })
  }
  if (err.type === 'unsupported_knob')
    return new ReproError(oneLine(err.message), {
      subject: target.name,
      hint: 'drop that --set knob for this target; its PyTorch does not support it',
    })
  if (err.type === 'data_hash_mismatch')
    return new ReproError('the training data arrived corrupted (sha256 mismatch)', {
      subject: target.name,
      hint: 'rerun; if it persists, check the disk or the engine copying files',
    })
  return new ReproError(`the probe failed: ${err.type}: ${oneLine(err.message)}`, {
    subject: target.name,
    hint: 'see stderr.txt in the run directory; rerun with --debug for details',
  })
}

function noTorch(target: Target): ReproError {
  const hint =
    target.kind === 'python'
      ? 'install torch into that environment (Debian: apt-get install python3-torch) or pass an interpreter that has it'
      : 'use an image with torch installed (e.g. RUN apt-get install -y python3-torch, or FROM a pytorch image)'
  return new ReproError('python runs but has no PyTorch (import torch failed)', {subject: target.name, hint})
}

function explainCrash(target: Target, result: ProbeResult): ReproError {
  if (NO_TORCH.test(result.stderrTail)) return noTorch(target)
  if (/No module named '?repro_probe'?/.test(result.stderrTail)) {
    return new ReproError('the probe package could not be imported', {
      subject: target.name,
      hint: 'reinstall repro; probe/repro_probe must ship with it',
    })
  }
  const last = lastLine(result.stderrTail)
  return new ReproError(`the probe crashed (exit ${result.exitCode})${last ? `: ${last}` : ''}`, {
    subject: target.name,
    hint: 'see stderr.txt in the run directory; rerun with --debug for details',
  })
}

export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  return oneLine(lines[lines.length - 1] ?? '').slice(0, 300)
}

function oneLine(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point (they are stripped from untrusted text)
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()
}
