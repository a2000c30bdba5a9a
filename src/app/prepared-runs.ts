// What `repro compare` reads: run directories, and the runs `repro prepare` staged once run.sh
// ran them — a prepared folder (its manifest.json lists the runs, in order) or one run's folder
// (spec.json). A staged run's artifacts are taken as the Slurm executor takes them (out/, or an
// image run's out.tar through the allowlist and caps of a local copy-out), into a temporary
// folder, and read through the same validators as any run directory.

import {promises as fs} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type {RunArtifacts} from '../core/types.js'
import {
  cleanEnd,
  endedHow,
  OLD_PREPARED_SCHEMA,
  parseNodeStatus,
  parsePreparedManifest,
  RUN_SPEC_SCHEMA,
  STAGED,
} from '../artifacts/prepared.js'
import {readRunDir} from '../artifacts/run-dir.js'
import {ReproError} from '../errors.js'
import {collectStagedRun, readSpecText} from '../targets/node-run.js'
import {lastLine} from '../targets/target.js'

export interface RunSource {
  /** as the user named it (a prepared folder's runs: FOLDER/RUN) */
  label: string
  dir: string
  /** a staged run (spec.json): its artifacts are collected before they are read */
  staged: boolean
  /** the target a prepared folder's manifest names for this run */
  target?: string
}

const exists = (p: string) =>
  fs.stat(p).then(
    () => true,
    () => false,
  )

/** Each argument as the runs it stands for: a prepared folder's runs in manifest order, else itself. */
export async function runSources(args: string[]): Promise<RunSource[]> {
  const out: RunSource[] = []
  for (const arg of args) {
    const manifest = path.join(arg, 'manifest.json')
    if (await exists(manifest)) {
      const text = await fs.readFile(manifest, 'utf8')
      const m = parsePreparedManifest(text.length > 64 * 1024 * 1024 ? '' : text)
      if (!m.ok)
        throw new ReproError(
          m.old
            ? `${manifest} is ${OLD_PREPARED_SCHEMA} (an older repro prepare), whose runs this compare does not read as a folder`
            : `${manifest} is not a repro prepare manifest`,
          {
            subject: 'compare',
            hint: m.old
              ? 'compare its run directories directly (FOLDER/VARIANT/WORKLOAD-rN), or prepare the runs again with this repro'
              : 'pass run directories, or a folder written by repro prepare',
          },
        )
      for (const r of m.runs) out.push({label: path.join(arg, r.dir), dir: path.join(arg, r.dir), staged: true, target: r.targetName})
    } else {
      out.push({label: arg, dir: arg, staged: await exists(path.join(arg, STAGED.spec))})
    }
  }
  return out
}

/** One source's artifacts, validated; a staged run that did not run, or failed, is one line naming it. */
export async function readRunSource(src: RunSource, label: string): Promise<RunArtifacts> {
  if (!src.staged) return readRunDir(src.dir, label)
  const image = isImageSpec(await readSpecText(src.dir, label))
  if (image === null)
    throw new ReproError(`${src.label}/${STAGED.spec} is not a run spec`, {subject: label, hint: 'prepare the runs again (repro prepare)'})
  const statusText = await fs.readFile(path.join(src.dir, STAGED.status), 'utf8').catch(() => null)
  if (statusText === null)
    throw new ReproError(`${src.label} has not run yet (no ${STAGED.status})`, {
      subject: label,
      hint: 'run the prepared folder’s run.sh first (sh FOLDER/run.sh), then compare',
    })
  const status = parseNodeStatus(statusText.slice(0, 1024 * 1024))
  if (!status)
    throw new ReproError(`${src.label}/${STAGED.status} is not the node runner's status`, {
      subject: label,
      hint: 'run run.sh again for that run',
    })
  if (!cleanEnd(status)) {
    const last = lastLine(status.stderr_tail)
    throw new ReproError(
      `the run failed where it ran (${endedHow(status)}${status.node ? ` on ${status.node.slice(0, 64)}` : ''})${last ? `: ${last}` : ''}`,
      {
        subject: label,
        hint: `see ${path.join(src.label, STAGED.status)} (stderr_tail); fix it and run run.sh again`,
      },
    )
  }
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'repro-compare-'))
  try {
    const c = status.container
    await collectStagedRun(
      src.dir,
      tmp,
      label,
      image ? {truncated: c?.out_truncated ?? false, required: true, stderrTail: c?.error ?? ''} : null,
    )
    return await readRunDir(tmp, label)
  } finally {
    await fs.rm(tmp, {recursive: true, force: true})
  }
}

/** Is the run spec an image run's? null: not a run spec. */
function isImageSpec(text: string): boolean | null {
  try {
    const spec = JSON.parse(text) as unknown
    if (!spec || typeof spec !== 'object' || (spec as {schema?: unknown}).schema !== RUN_SPEC_SCHEMA) return null
    return 'image' in spec
  } catch {
    return null
  }
}
