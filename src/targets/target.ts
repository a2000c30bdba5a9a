// One interface for every place the probe can run (local python now; docker/podman next).
// `runProbe` is the template method: it checks what every target must guarantee, then calls
// the target's own `runProbeImpl`.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {explainMissingInput, type MissingInput, type ProbeError, type ScriptProjectContext} from './missing-input.js'

export type {ProbeError, ScriptProjectContext} from './missing-input.js'

export type ProbeMode = 'fingerprint' | 'train' | 'script' | 'replay'

export interface ProbeJob {
  mode: ProbeMode
  /** holds config.json (and data.safetensors in train mode) */
  inputDir: string
  /** where the probe's artifacts must end up on the host */
  outDir: string
  timeoutMs: number
  /** environment variables for the probe (the knobs' env), on top of a clean environment */
  env: Record<string, string>
  /** script mode: the project copy, so a file or module the script misses is named with its fix */
  project?: ScriptProjectContext
  /**
   * A batched target's run whose sibling failed (another repeat of the same target and workload):
   * a run still queued or running is cancelled, since the workload's result is that failure.
   */
  signal?: AbortSignal
  /**
   * Called once the run is under way: a local probe's process spawned, an engine's or a
   * scheduler's work begun. An audit without a run cache measures the host only then, so that
   * measurement (~0.1 s of node's own time) does not hold back the first probe's start. Called
   * at the latest when the run has ended; more than once is harmless.
   */
  onStarted?: () => void
}

/**
 * How a probe run ended, as the target saw it. Targets only report; `runProbe` turns every
 * outcome but a clean exit into one one-line error, in one place (explainOutcome).
 */
export type ProbeOutcome = ProbeEnd & {
  /** where the run happened, when not here: appended to its error line ("Slurm job 12 on node1: FAILED") */
  where?: string
}

type ProbeEnd =
  /** `interpreter`: the python that ran the probe, when the target knows it */
  | {kind: 'exited'; exitCode: number; seconds: number; stderrTail: string; interpreter?: string}
  | {kind: 'timed-out'; seconds: number; limitSeconds: number; stderrTail: string}
  | {kind: 'out-of-memory'; seconds: number; limit: string | null; stderrTail: string}
  | {kind: 'killed'; seconds: number; signal: string; stderrTail: string}
  /**
   * None of `tried` could be started. `searchPath`: the PATH it was looked up in (the image's);
   * `entrypoint`: a kept entrypoint that ran first (and may have set its own PATH).
   */
  | {
      kind: 'no-interpreter'
      seconds: number
      interpreter: string
      tried?: string[]
      searchPath?: string | null
      entrypoint?: string | null
      stderrTail: string
    }
  /** the container's size-bounded work area ran full (`phase`: copying the inputs in, or the probe writing) */
  | {kind: 'work-area-full'; seconds: number; cap: string; phase: 'inputs' | 'probe'; stderrTail: string}
  /** a kept entrypoint ended before it started the interpreter */
  | {kind: 'entrypoint-failed'; seconds: number; entrypoint: string; exitCode: number; stderrTail: string}
  /** the engine stopped answering in the middle of the run */
  | {kind: 'engine-lost'; seconds: number; engine: string; detail: string; stderrTail: string}
  /** Slurm ended the job (scancel, its time limit, preemption) before the probe finished; `state` as Slurm says it */
  | {kind: 'slurm-ended'; seconds: number; jobId: string; state: string; reason: string; stderrTail: string}

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
  /**
   * Runs go to a scheduler in batches (Slurm arrays): the audit hands it every run of a stage at
   * once instead of --jobs at a time, and the scheduler's throttle bounds how many run.
   */
  readonly batched?: boolean
  identify(): Promise<TargetIdentity>
  /**
   * What determines this target's results, cheaply: the run cache reuses a run only when this
   * is unchanged (an image's content ID; an interpreter and its installed distributions).
   */
  cacheIdentity(): Promise<Record<string, unknown>>
  runProbeImpl(job: ProbeJob): Promise<ProbeOutcome>
}

/**
 * What the host passes to every probe beside the knobs: REPRO_EMULATE_CPU, the test suite's
 * AVX2-host switch (docs/testing.md; the probe caps ATen and oneDNN at AVX2 before torch loads).
 */
export function hostProbeEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return env['REPRO_EMULATE_CPU'] ? {REPRO_EMULATE_CPU: env['REPRO_EMULATE_CPU']} : {}
}

/** Run the probe in a target and turn every way it can fail into a one-line ReproError. */
export async function runProbe(target: Target, job: ProbeJob): Promise<ProbeResult> {
  await fs.mkdir(job.outDir, {recursive: true})
  const outcome = await target.runProbeImpl({...job, env: {...hostProbeEnv(), ...job.env}}).finally(() => job.onStarted?.())
  await fs.writeFile(path.join(job.outDir, 'stderr.txt'), outcome.stderrTail)
  if (outcome.kind === 'exited' && outcome.exitCode === 0) return outcome
  const e = await explainOutcome(target, outcome, job.outDir, job.project)
  if (!outcome.where) throw e
  // a run elsewhere (a Slurm job): where it ran, and its last stderr line unless the message has it
  const last = lastLine(outcome.stderrTail).slice(0, 200)
  const where = `${outcome.where}${last && !e.message.includes(last) ? `; last stderr line: ${last}` : ''}`
  throw new ReproError(`${e.message} (${where})`, {subject: e.subject, hint: e.hint, code: e.code})
}

/** The one place a probe run that did not end cleanly becomes a one-line error with its fix. */
export async function explainOutcome(
  target: Target,
  outcome: ProbeOutcome,
  outDir: string,
  project?: ScriptProjectContext,
): Promise<ReproError> {
  const container = target.kind !== 'python'
  switch (outcome.kind) {
    case 'timed-out':
      return new ReproError(
        container
          ? `the probe timed out after ${outcome.limitSeconds} s; the container was killed and removed`
          : `the probe timed out after ${outcome.limitSeconds} s and was killed`,
        {subject: target.name, hint: 'raise --timeout, or lower --epochs / --rows'},
      )
    case 'out-of-memory':
      return new ReproError(
        outcome.limit ? `the probe ran out of memory (killed at the --memory ${outcome.limit} limit)` : 'the probe ran out of memory',
        {subject: target.name, hint: outcome.limit ? 'raise --memory, or lower --rows' : 'free memory, or lower --rows'},
      )
    case 'killed':
      return new ReproError(`the probe was killed (${outcome.signal}; out of memory?)`, {
        subject: target.name,
        hint: 'free memory or lower --rows, and rerun',
      })
    case 'no-interpreter':
      return noInterpreter(target, outcome)
    case 'work-area-full':
      return new ReproError(
        outcome.phase === 'inputs'
          ? `the container's work area ran full (--work-area ${outcome.cap}) while the probe's inputs were copied in`
          : `the container's work area ran full (--work-area ${outcome.cap}) while the probe ran; the container and its volume were removed`,
        {
          subject: target.name,
          hint: 'raise --work-area (for example --work-area 2g), or lower --rows or store fewer steps (--store-steps)',
        },
      )
    case 'entrypoint-failed':
      return new ReproError(
        `the image's entrypoint ${outcome.entrypoint} exited (${outcome.exitCode}) before it started python${lastLine(outcome.stderrTail) ? `: ${lastLine(outcome.stderrTail)}` : ''}`,
        {subject: target.name, hint: 'fix the entrypoint in the image, or start the probe without it: --image-entrypoint skip'},
      )
    case 'slurm-ended': {
      const last = lastLine(outcome.stderrTail)
      return new ReproError(
        `Slurm ended job ${outcome.jobId} (${outcome.state}${outcome.reason && outcome.reason !== 'None' ? `, ${outcome.reason}` : ''}) before the probe finished${container ? '; its container was removed' : ''}${last ? `: ${last}` : ''}`,
        {subject: target.name, hint: SLURM_END_HINTS[outcome.state] ?? 'see `scontrol show job` and rerun'},
      )
    }
    case 'engine-lost':
      return new ReproError(`the ${outcome.engine} engine stopped answering during the run (${outcome.detail})`, {
        subject: target.name,
        hint: `check the engine (${outcome.engine} info) and rerun; the next run removes any container it left`,
      })
    case 'exited': {
      const probeError = await readProbeError(outDir)
      if (!probeError) return explainCrash(target, outcome)
      const missing = project ? await explainMissingInput(probeError, project) : null
      const e = explainProbeError(target, probeError, outcome, missing)
      // what failed inside a target depends on its torch: name the version the probe saw
      // (not for a file or module the host found: that is about the copy, not the environment)
      const torch = missing ? null : await readTorchVersion(outDir)
      return torch && !e.message.includes(torch) ? new ReproError(`${e.message} (torch ${torch})`, {subject: e.subject, hint: e.hint}) : e
    }
  }
}

/** What to do when Slurm ended a job early, by its state. */
const SLURM_END_HINTS: Record<string, string> = {
  TIMEOUT: "raise --slurm-time (default: the run's --timeout plus 5 minutes), or lower --epochs / --rows",
  CANCELLED: 'the job was cancelled (scancel, or an administrator): rerun',
  PREEMPTED: 'rerun, or use a partition or QOS without preemption (--slurm-partition, --slurm-arg=--qos=…)',
  NODE_FAIL: 'the node failed: rerun (Slurm places the job elsewhere)',
}

function noInterpreter(target: Target, o: Extract<ProbeOutcome, {kind: 'no-interpreter'}>): ReproError {
  const tried = o.tried?.length ? o.tried : [o.interpreter]
  const names = tried.length === 1 ? `no ${tried[0]}` : `neither ${tried.slice(0, -1).join(', ')} nor ${tried[tried.length - 1]}`
  const where = o.entrypoint
    ? ` on the PATH its entrypoint ${o.entrypoint} sets`
    : o.searchPath !== undefined
      ? ` on its PATH (${o.searchPath ?? 'not set'})`
      : ''
  const named = tried.length === 1 && tried[0]!.includes('/')
  return new ReproError(`the image has ${names}${where}`, {
    subject: target.name,
    hint: named
      ? 'check the path given to --python-in-image (it is looked up inside the image)'
      : 'use an image with python3 and torch installed, or name its interpreter with --python-in-image PATH',
  })
}

async function readProbeError(outDir: string): Promise<ProbeError | null> {
  try {
    const raw = JSON.parse(await fs.readFile(path.join(outDir, 'run.json'), 'utf8').then((s) => s.slice(0, 1 << 20)))
    if (raw && raw.status === 'error' && raw.error && typeof raw.error.message === 'string') {
      const e = raw.error
      return {
        type: String(e.type).slice(0, 100),
        message: String(e.message).slice(0, 500),
        ...(typeof e.path === 'string' && e.path.length <= 4096 ? {path: e.path} : {}),
        ...(typeof e.module === 'string' && e.module.length <= 256 ? {module: e.module} : {}),
      }
    }
  } catch {
    // no readable run.json: the probe died before writing it
  }
  return null
}

/** What to do when the user's script fails inside a target, by the probe's error type. */
const SCRIPT_HINTS: Record<string, (t: Target) => string> = {
  script_not_found: () => 'pass the path of the training script (--script), relative to where repro runs',
  script_error: () =>
    'the script itself raised: run it in that environment to see the whole traceback (stderr.txt in the run directory has it)',
  no_optimizer_step: () =>
    'the script finished without a training step (no optimizer step, no backward()): pass arguments that make it train (--script-args); training in spawned child processes is not traced (docs/scripts.md)',
  notebook_cell_error: () =>
    'that cell raised, which stops the notebook as Run All does: fix it, or pass --allow-errors to go on past raising cells (as nbconvert --allow-errors)',
  notebook_syntax: (t) =>
    t.kind === 'python'
      ? 'that IPython syntax needs IPython in the interpreter (apt-get install python3-ipython), or remove the line; line magics such as %matplotlib are skipped without it'
      : 'that IPython syntax needs IPython in the image (apt-get install python3-ipython), or remove the line; line magics such as %matplotlib are skipped without it',
  missing_file: () =>
    'the file is not in the project copy: add it with --include if it lives in the project, or set the working directory the script expects with --cwd',
  missing_module: (t) =>
    t.kind === 'python'
      ? 'install that package into the interpreter, or add the folder it lives in with --include'
      : 'install that package into the image, or add the folder it lives in with --include',
  network_blocked: (t) =>
    t.kind === 'python'
      ? 'the script needs the network: give it its data locally (the run is not network-isolated for --python targets, but reproducibility needs local inputs)'
      : 'image targets run without a network: bundle the data with the script (--include) or in the image',
  tracer_error: () => 'repro could not trace this script: rerun with --debug and report it',
  // launch mistakes of a data-parallel script (the tracer's init_process_group and spawn wrappers)
  distributed_env: () =>
    "the script expects a launcher's ranks: pass --script-nproc N (script.nproc in repro.config.json) to run it under torchrun",
  spawn_children: () => 'launch the ranks with --script-nproc N instead (torchrun runs the script once per rank; rank 0 is traced)',
  nccl_unavailable: () => "use the gloo backend on a CPU target (init_process_group('gloo')), or run on a CUDA target with --device cuda",
  rank_failed: () => "a rank of the script died: stderr.txt in the run directory has torchrun's report",
}

/** torch.version from the fingerprint the probe wrote next to its failed run.json, if any (untrusted: capped, one line). */
async function readTorchVersion(outDir: string): Promise<string | null> {
  try {
    const text = await fs.readFile(path.join(outDir, 'fingerprint.json'), 'utf8')
    if (text.length > 8 * 1024 * 1024) return null
    const v = (JSON.parse(text) as {torch?: {version?: unknown}} | null)?.torch?.version
    return typeof v === 'string' ? oneLine(v).slice(0, 64) : null
  } catch {
    return null
  }
}

const NO_TORCH = /No module named '?torch'?/

export function explainProbeError(
  target: Target,
  err: ProbeError,
  result: ProbeResult & {interpreter?: string},
  /** a missing file or module found on the host but not copied (missing-input.ts) */
  missing: MissingInput | null = null,
): ReproError {
  if (NO_TORCH.test(err.message) || NO_TORCH.test(result.stderrTail)) return noTorch(target, result.interpreter)
  if (missing) return new ReproError(oneLine(missing.message), {subject: target.name, hint: missing.hint})
  if (err.type === 'cuda_unavailable') {
    return new ReproError('CUDA was requested but is not available', {
      subject: target.name,
      hint: 'run with --device cpu, or on a host/image with an NVIDIA GPU and CUDA-enabled PyTorch',
    })
  }
  const script = SCRIPT_HINTS[err.type]
  if (script) return new ReproError(oneLine(err.message), {subject: target.name, hint: script(target)})
  if (err.type === 'compile_unavailable')
    return new ReproError(oneLine(err.message), {
      subject: target.name,
      hint: 'build the image with a C++ toolchain for inductor (Debian: apt-get install g++ python3-dev python3-setuptools libtorch-dev), or drop --set compile=true for this target',
    })
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

function noTorch(target: Target, interpreter: string | undefined): ReproError {
  const hint =
    target.kind === 'python'
      ? 'install torch into that environment (Debian: apt-get install python3-torch) or pass an interpreter that has it'
      : 'use an image with torch installed (e.g. RUN apt-get install -y python3-torch, or FROM a pytorch image), or name the interpreter that has it with --python-in-image PATH'
  const who = target.kind !== 'python' && interpreter ? `python (${interpreter})` : 'python'
  return new ReproError(`${who} runs but has no PyTorch (import torch failed)`, {subject: target.name, hint})
}

function explainCrash(target: Target, result: ProbeResult & {interpreter?: string}): ReproError {
  if (NO_TORCH.test(result.stderrTail)) return noTorch(target, result.interpreter)
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
