// Flag definitions shared by several commands, defined once.

import {Flags} from '@oclif/core'
import {KNOB_NAMES} from '../core/knobs.js'
import {expandWorkloads, WORKLOAD_NAMES, WORKLOADS, type WorkloadName} from '../core/workloads.js'
import {ReproError} from '../errors.js'
import type {ScriptRequest} from '../app/script-inputs.js'

export const targetFlags = {
  python: Flags.string({
    description: 'Python interpreter to run the probe with (venv, conda env, system python). Repeatable.',
    multiple: true,
    helpGroup: 'TARGETS',
  }),
  image: Flags.string({
    description: 'Container image to run the probe in (docker or podman; never bind-mounted, so remote engines work). Repeatable.',
    multiple: true,
    helpGroup: 'TARGETS',
  }),
  engine: Flags.string({
    description: 'Container engine for --image targets (with --executor slurm: the nodes’ engine; auto means docker there).',
    options: ['auto', 'docker', 'podman'],
    default: 'auto',
    helpGroup: 'CONTAINERS',
  }),
  device: Flags.string({
    description: 'Where to train: cuda passes the GPUs to containers (--gpus all / CDI); auto picks cuda when the host has an NVIDIA GPU.',
    options: ['auto', 'cpu', 'cuda'],
    default: 'auto',
  }),
  memory: Flags.string({
    description: "Memory limit per run: its container's (also its swap limit); a target's container takes one run at a time.",
    default: '4g',
    helpGroup: 'CONTAINERS',
  }),
  cpus: Flags.string({description: 'CPU limit per container.', default: '2', helpGroup: 'CONTAINERS'}),
  'pids-limit': Flags.integer({description: 'Process limit per container.', default: 1024, min: 16, helpGroup: 'CONTAINERS'}),
  'work-area': Flags.string({
    description:
      "Size of each container's work area (/repro: the probe, its inputs and artifacts), a tmpfs-backed volume any image user can write, emptied between the runs a container takes one at a time; writing past it stops the run. What the probe writes there counts against --memory.",
    default: '1g',
    helpGroup: 'CONTAINERS',
  }),
  'python-in-image': Flags.string({
    description:
      'Interpreter inside the image: a name looked up on the PATH the image (or its kept entrypoint) sets, or a path. Default: python3, then python. [N:]PATH for target N only. Repeatable.',
    multiple: true,
    helpGroup: 'CONTAINERS',
  }),
  'image-entrypoint': Flags.string({
    description:
      "How the image's ENTRYPOINT is treated: auto keeps one that runs its arguments (a shell script, sh -c '…\"$@\"', an init, conda run) and skips an interpreter or an application; keep or skip force it. The report says which was done.",
    options: ['auto', 'keep', 'skip'],
    default: 'auto',
    helpGroup: 'CONTAINERS',
  }),
  set: Flags.string({
    description: `Runtime knob for one target or all: [N:]key=value, N is the target's position (1-based). Knobs: ${KNOB_NAMES.join(', ')} (docs/knobs.md).`,
    multiple: true,
    helpGroup: 'TARGETS',
  }),
  timeout: Flags.integer({description: 'Seconds before a probe run is killed.', default: 600, min: 1}),
}

/** Where probe runs execute: here (local), as Slurm jobs, or — manifests only — Kubernetes Indexed Jobs (audit only). */
export const executorFlags = {
  executor: Flags.string({
    description:
      "Where probe runs execute: local (here), slurm (each run a Slurm job via sbatch; --python and --image targets: an image's container runs on the node with the job's GPUs only, and --memory / --cpus, where not given, from the job's allocation (given ones are requested with --mem / --cpus-per-task); compare, attribution and reports stay here; the run cache is off), or k8s (--image targets as Kubernetes Indexed Jobs: only --dry-run exists, which writes the manifests; docs/scale-out.md).",
    options: ['local', 'slurm', 'k8s'],
    default: 'local',
    helpGroup: 'EXECUTOR',
  }),
  'slurm-partition': Flags.string({description: 'Slurm partition (sbatch --partition).', helpGroup: 'EXECUTOR'}),
  'slurm-account': Flags.string({description: 'Slurm account (sbatch --account).', helpGroup: 'EXECUTOR'}),
  'slurm-time': Flags.string({
    description: "Slurm time limit per job (sbatch --time). Default: the run's --timeout plus 5 minutes.",
    helpGroup: 'EXECUTOR',
  }),
  'slurm-gres': Flags.string({
    description:
      "Generic resources per job (sbatch --gres), e.g. gpu:h100:1. An image's container gets the job's GPUs (--gpus device=…, CDI devices on podman).",
    helpGroup: 'EXECUTOR',
  }),
  'slurm-arg': Flags.string({
    description: 'One more sbatch argument, as given (e.g. --slurm-arg=--qos=low). Repeatable.',
    multiple: true,
    helpGroup: 'EXECUTOR',
  }),
  'dry-run': Flags.boolean({
    description:
      "--executor k8s: write each image's NetworkPolicy and Indexed Job (and its Pod template alone, for podman kube play) into --out/k8s, and every run's inputs into --out/<run>/inputs, then exit 0 without running anything.",
    helpGroup: 'EXECUTOR',
  }),
  'k8s-namespace': Flags.string({
    description: 'Namespace written into the Kubernetes manifests (default: none, kubectl’s own).',
    helpGroup: 'EXECUTOR',
  }),
  'k8s-gpu-product': Flags.string({
    description:
      'With --device cuda: the Pods run only on nodes whose nvidia.com/gpu.product label (NVIDIA GPU feature discovery) is this, e.g. NVIDIA-H100-80GB-HBM3.',
    helpGroup: 'EXECUTOR',
  }),
  staging: Flags.string({
    description:
      "Folder shared by this host and the cluster's nodes where runs are staged. Default: a folder under the temp dir (a single-node cluster).",
    helpGroup: 'EXECUTOR',
  }),
}

export const trainingFlags = {
  seed: Flags.integer({description: 'Training seed (python, torch, batch order).', default: 1234, min: 0}),
  epochs: Flags.integer({description: 'Training epochs.', default: 3, min: 1, max: 1000}),
  rows: Flags.integer({
    description: `Rows of each generated data set (default: each workload's own — ${WORKLOAD_NAMES.map((w) => `${w} ${WORKLOADS[w].data.spec.rows}`).join(', ')}).`,
    min: 32,
    max: 10_000_000,
  }),
  workload: Flags.string({
    description: `What every target trains: ${WORKLOAD_NAMES.map((w) => `${w} (${WORKLOADS[w].summary})`).join('; ')}; or all (the thorough audit). Repeatable.`,
    multiple: true,
    options: [...WORKLOAD_NAMES, 'all'],
    default: ['mlp'],
  }),
  data: Flags.string({description: 'Train on this CSV instead of the synthetic data (needs --label).', dependsOn: ['label']}),
  label: Flags.string({description: 'The CSV column to predict.'}),
  'store-steps': Flags.string({
    description:
      'Steps whose tensor values are stored: "default" (init, steps 0 and 1, the end of every epoch) or a comma list such as 0,5,10 (init is always stored).',
    default: 'default',
  }),
}

/** `default` → null (the probe's own set), else a sorted list of step indices. */
export function parseStoreSteps(text: string): number[] | null {
  if (text === 'default') return null
  if (text === '' || text === 'none') return []
  const steps = text.split(',').map((s) => s.trim())
  if (!steps.every((s) => /^\d+$/.test(s))) {
    throw new ReproError(`--store-steps ${JSON.stringify(text)} is not "default" or a comma list of step numbers`, {
      subject: '--store-steps',
      hint: 'write for example --store-steps 0,1,25',
    })
  }
  return [...new Set(steps.map(Number))].sort((a, b) => a - b)
}

export function timestamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-')
}

/** --workload values in the order given, `all` expanded, each once (oclif already rejected unknown names). */
export const parseWorkloads = (values: string[]): WorkloadName[] => expandWorkloads(values)

/** The user's own training script instead of the built-in workloads (audit and run). */
export const scriptFlags = {
  script: Flags.string({
    description:
      'Audit your own training script (or notebook, .ipynb) instead of the built-in workloads: its project is copied into each target and it runs unchanged as __main__, traced per optimizer step (module outputs, losses, gradients, parameters), seeded, stopped after --max-steps.',
    helpGroup: 'SCRIPT',
    exclusive: ['module'],
  }),
  module: Flags.string({
    description:
      'Audit a module of your project instead, run as `python -m NAME` does (e.g. pkg.train), from the working directory; the project root is found from there.',
    helpGroup: 'SCRIPT',
    exclusive: ['script'],
  }),
  project: Flags.string({
    description:
      "The project folder copied into each target. Default: the nearest folder at or above the script's (a module's: the working directory) holding repro.config.json or .git, else the script's folder. In a git work tree: its tracked and untracked-but-not-ignored files.",
    helpGroup: 'SCRIPT',
  }),
  cwd: Flags.string({
    description: 'Working directory of the script inside the copy (must be inside the project). Default: where repro is started.',
    helpGroup: 'SCRIPT',
  }),
  'script-args': Flags.string({
    description: 'Arguments for the script, as one string split like a shell would (no expansion).',
    helpGroup: 'SCRIPT',
  }),
  include: Flags.string({
    description:
      'A file or folder to add to the project copy (e.g. gitignored data), at its path relative to the project root. Repeatable.',
    multiple: true,
    helpGroup: 'SCRIPT',
  }),
  'list-inputs': Flags.boolean({
    description: 'Print what would be copied into each target (sizes, paths, the root, cwd and script as mapped) and exit without running.',
    helpGroup: 'SCRIPT',
  }),
  'allow-errors': Flags.boolean({
    description: "Notebooks: go on past a cell that raises (as nbconvert's --allow-errors).",
    helpGroup: 'SCRIPT',
  }),
  'max-steps': Flags.integer({
    description: 'Optimizer steps traced before the script is stopped (on purpose).',
    default: 30,
    min: 1,
    max: 100_000,
    helpGroup: 'SCRIPT',
  }),
  'script-nproc': Flags.integer({
    description:
      "Run the script as N data-parallel ranks under torchrun (torch.distributed.run --standalone): rank 0 is traced, every other rank untraced, and their final parameters must equal rank 0's (the replica check). Not for notebooks.",
    default: 1,
    min: 1,
    max: 16,
    helpGroup: 'SCRIPT',
  }),
  'check-observer': Flags.boolean({
    description:
      'Also run the script untraced in each target and require bitwise-equal final parameters (proves the tracer changes no numerics).',
    helpGroup: 'SCRIPT',
  }),
}

/** Split --script-args like a shell (quotes and backslashes; no variables, globs or substitution). */
export function splitArgs(text: string | undefined): string[] {
  if (!text) return []
  const out: string[] = []
  let cur = ''
  let quote: '"' | "'" | null = null
  let has = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quote) {
      if (c === quote) quote = null
      else if (c === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i]
      else cur += c
    } else if (c === '"' || c === "'") {
      quote = c
      has = true
    } else if (c === '\\' && i + 1 < text.length) {
      cur += text[++i]
      has = true
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur)
      cur = ''
      has = false
    } else cur += c
  }
  if (quote)
    throw new ReproError(`--script-args ${JSON.stringify(text)} has an unclosed quote`, {subject: '--script-args', hint: 'close the quote'})
  if (has || cur) out.push(cur)
  return out
}

/** The script flags as a ScriptRequest (relative paths from where repro runs), or undefined without --script / --module. */
export function scriptRequest(flags: {
  script?: string | undefined
  module?: string | undefined
  project?: string | undefined
  cwd?: string | undefined
  include?: string[] | undefined
  'script-args'?: string | undefined
  'max-steps': number
  'script-nproc'?: number | undefined
  'check-observer'?: boolean | undefined
  'allow-errors'?: boolean | undefined
}): ScriptRequest | undefined {
  if (flags.script === undefined && flags.module === undefined) return undefined
  return {
    ...(flags.script !== undefined ? {script: flags.script} : {}),
    ...(flags.module !== undefined ? {module: flags.module} : {}),
    ...(flags.project !== undefined ? {project: flags.project} : {}),
    ...(flags.cwd !== undefined ? {cwd: flags.cwd} : {}),
    include: flags.include ?? [],
    args: splitArgs(flags['script-args']),
    maxSteps: flags['max-steps'],
    ...(flags['script-nproc'] !== undefined ? {nproc: flags['script-nproc']} : {}),
    observer: flags['check-observer'] ?? false,
    allowErrors: flags['allow-errors'] ?? false,
    base: process.cwd(),
    source: 'flags',
  }
}
