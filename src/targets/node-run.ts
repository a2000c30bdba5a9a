// One probe run staged as a folder for probe/node_runner.py (stdlib python, no node.js): the
// run's inputs and its run spec (spec.json, `repro.prepared/2`). The Slurm executor stages each
// job this way in its shared folder, and `repro prepare` each entry of its folder; after the
// runner ran it, `collectStagedRun` takes the artifacts back through the same allowlist and caps
// as a local run.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {RUN_SPEC_SCHEMA, type RunSpec, STAGED} from '../artifacts/prepared.js'
import {type CreateSpec, createParts, removeArgs} from './container-args.js'
import {artifactsFromTar, type ContainerTarget, inputsTar, type LaunchPlan, OUT_TOTAL_CAP} from './container.js'
import {WORK_AREA} from './image-launch.js'
import {probePythonPath, probeRoot} from './probe-path.js'
import type {ProbeJob} from './target.js'

/** How the staged run starts: an interpreter, or a container from an image target's launch plan. */
export type StagedLaunch =
  | {
      kind: 'python'
      interpreter: string
      /** the probe package already staged once for many runs (a prepared folder's probe/), relative to each run's folder: not copied per run */
      sharedProbe?: string
    }
  | {
      kind: 'image'
      target: ContainerTarget
      plan: LaunchPlan
      interpreter: string
      /** the container limits the runner takes from a Slurm allocation instead (those the user did not set) */
      limitsFromAllocation: {memory: boolean; cpus: boolean}
      /** the container's labels, when not this process's (a prepared run: preparedLabels) */
      labels?: Record<string, string>
    }

export interface StagedRun {
  spec: RunSpec
  /** the python that starts the runner: the target's interpreter, or python3 for an image run */
  runner: string
  /** image runs: the container as created (its image as named, limits, engine) */
  create: CreateSpec | null
}

/**
 * Stage one run into `stage` (an existing folder): the probe package and the inputs (a python
 * run) or the inputs tar a local run copies in (an image run: the probe, the inputs, `ready`),
 * and spec.json. The image is named as the user gave it: the machine that runs it uses its own
 * image under that name and reports the ID it ran.
 */
export async function stageRun(stage: string, job: ProbeJob, launch: StagedLaunch): Promise<StagedRun> {
  const timeout_seconds = Math.max(1, Math.round(job.timeoutMs / 1000))
  let staged: StagedRun
  if (launch.kind === 'python') {
    if (!launch.sharedProbe) await copyProbePackage(path.join(stage, 'probe'))
    await fs.cp(job.inputDir, path.join(stage, 'inputs'), {recursive: true})
    staged = {
      spec: {
        schema: RUN_SPEC_SCHEMA,
        python: launch.interpreter,
        argv: ['-m', 'repro_probe', job.mode, '--config', './inputs/config.json', '--out', `./${STAGED.out}`],
        env: {...job.env, PYTHONPATH: probePythonPath(job.env, launch.sharedProbe ?? './probe')},
        timeout_seconds,
        status: STAGED.status,
      },
      runner: launch.interpreter,
      create: null,
    }
  } else {
    await fs.writeFile(path.join(stage, 'inputs.tar'), await inputsTar(job))
    const made = launch.target.createSpec(job, launch.plan, launch.interpreter, false)
    const create = launch.labels ? {...made, labels: launch.labels} : made
    staged = {
      spec: {
        schema: RUN_SPEC_SCHEMA,
        image: {
          engine: create.engine,
          ...createParts(create),
          remove: removeArgs(create.engine, []),
          work_area: WORK_AREA,
          inputs_tar: './inputs.tar',
          out_tar: `./${STAGED.outTar}`,
          out_cap: OUT_TOTAL_CAP,
          limits_from_allocation: launch.limitsFromAllocation,
        },
        timeout_seconds,
        status: STAGED.status,
      },
      runner: 'python3',
      create,
    }
  }
  await fs.writeFile(path.join(stage, STAGED.spec), JSON.stringify(staged.spec, null, 2))
  return staged
}

/**
 * The artifacts of a staged run that the runner ran, into `outDir`: a python run's regular files
 * of out/ (never links or folders; the readers check each one's cap); with `image`, an image
 * run's out.tar through the allowlist and caps of a local copy-out (`truncated`: the runner cut
 * it at its cap; `required`: no tar is an error).
 */
export async function collectStagedRun(
  stage: string,
  outDir: string,
  subject: string,
  image: {truncated: boolean; required: boolean; stderrTail: string} | null,
): Promise<void> {
  if (!image) {
    await copyRegularFiles(path.join(stage, STAGED.out), outDir)
    return
  }
  const tar = await readCapped(path.join(stage, STAGED.outTar), OUT_TOTAL_CAP)
  await artifactsFromTar(tar, image.truncated, outDir, image.required, image.stderrTail, subject)
}

async function copyRegularFiles(from: string, to: string): Promise<void> {
  await fs.mkdir(to, {recursive: true})
  const names = await fs.readdir(from).catch(() => [] as string[])
  for (const name of names) {
    const stat = await fs.lstat(path.join(from, name))
    if (stat.isFile()) await fs.copyFile(path.join(from, name), path.join(to, name))
  }
}

export async function readCapped(p: string, cap: number): Promise<Buffer | null> {
  const stat = await fs.lstat(p).catch(() => null)
  if (!stat?.isFile() || stat.size > cap) return null
  return fs.readFile(p)
}

/** The probe package (repro_probe, no bytecode caches) into `dir`. */
export async function copyProbePackage(dir: string): Promise<void> {
  await fs.cp(path.join(probeRoot(), 'repro_probe'), path.join(dir, 'repro_probe'), {
    recursive: true,
    filter: (src) => path.basename(src) !== '__pycache__',
  })
}

/** The runner's node_runner.py into `dir` (a stage's probe/ folder, or a prepared folder's). */
export async function copyNodeRunner(dir: string): Promise<void> {
  await fs.mkdir(dir, {recursive: true})
  await fs.copyFile(path.join(probeRoot(), 'node_runner.py'), path.join(dir, 'node_runner.py'))
}

/** A staged run's folder that holds no spec.json is not one. */
export async function readSpecText(stage: string, subject: string): Promise<string> {
  const text = await fs.readFile(path.join(stage, STAGED.spec), 'utf8').catch(() => null)
  if (text === null || text.length > 4 * 1024 * 1024)
    throw new ReproError(`${stage} holds no readable ${STAGED.spec}`, {subject, hint: 'pass a run folder written by repro prepare'})
  return text
}
