// An image target's inspect task on a Slurm node: the launch plan (container.ts) is made from
// what the engine that runs the image says, not from an engine on the submit host, which may
// have none. One task per image for the whole audit (the targets naming it share its answer),
// in an array of its own before the matrix; a second, only when the entrypoint's file decides
// how the probe starts, reads that file's first bytes. The node's runner (probe/node_runner.py)
// asks `version`, `image inspect` (pulling the image first if the node lacks it) and `cp`. A
// python target's interpreter is identified on a node the same way (an identify task: its real
// path, size and mtime), so it need not exist on the submit host.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'
import {type InspectEntry, RUN_SPEC_SCHEMA, type NodeStatus, type RunSpec, STAGED} from '../artifacts/prepared.js'
import {type EngineName, removeArgs} from './container-args.js'
import {type ImageInspector, labelArgs} from './container.js'
import {type Engine, type ImageIdentity, parseImageInspect, parseServerVersion, VERSION_FORMAT} from './engine.js'
import {readCapped} from './node-run.js'
import {awaitStatus, type SlurmArrays, type SlurmOptions, TaskOverdue, withStage} from './slurm-array.js'
import {firstTarEntry, type FileHead} from './tar.js'
import {lastLine, type TargetIdentity} from './target.js'

/** an inspect task's own time limit (a pull included) */
const INSPECT_SECONDS = 300
const INSPECT_OUT = 'inspect.json'
const FILE_OUT = 'file.tar'

/** The inspect task's spec (pure): without `read`, `version` and `image inspect` only. */
export function inspectSpec(
  engine: EngineName,
  image: string,
  read?: {imageId: string; paths: string[]},
): Extract<RunSpec, {inspect: InspectEntry}> {
  const entry: InspectEntry = {engine, image, version_format: VERSION_FORMAT[engine], inspect_out: `./${INSPECT_OUT}`}
  if (read) {
    Object.assign(entry, {
      read: read.paths,
      read_image: read.imageId,
      create: ['create', '--network', 'none', ...labelArgs(), '--entrypoint', '/nonexistent/repro-inspect'],
      // docker cp copies a symlink as a link unless -L; podman cp always follows it
      cp: engine === 'docker' ? ['cp', '-L'] : ['cp'],
      remove: removeArgs(engine, []),
      file_out: `./${FILE_OUT}`,
    })
  }
  return {schema: RUN_SPEC_SCHEMA, inspect: entry, timeout_seconds: INSPECT_SECONDS, status: STAGED.status}
}

/**
 * What an inspect task's status says, or the one-line error (pure): the runner's answer is
 * untrusted, so a status without one, or an answer that is not ok, is an error naming the node.
 */
export function inspectAnswer(
  status: NodeStatus,
  subject: string,
  engine: EngineName,
): {server: Engine['server']; where: string; file: string | null} {
  const where = `node ${status.node.slice(0, 64)}`
  const answer = status.inspect
  if (status.terminated || !answer)
    throw new ReproError(`the image's inspect task on ${where} ended before it answered (${status.terminated ?? 'no answer'})`, {
      subject,
      hint: 'rerun; see `scontrol show job` if it keeps ending early',
    })
  if (!answer.ok)
    throw new ReproError(`on ${where}: ${lastLine(answer.error) || 'the inspect task failed'}`, {
      subject,
      hint: /not present|could not be pulled/.test(answer.error)
        ? 'build or load the image on the nodes (fixtures: bash fixtures/images/build.sh), or push it to a registry they can pull from'
        : `check the engine on the node with \`${engine} info\`, or pick the nodes' engine with --engine`,
    })
  return {server: parseServerVersion(answer.version), where, file: answer.file}
}

export class NodeImageInspector implements ImageInspector {
  private inspected: Promise<{identity: ImageIdentity; server: Engine['server']; where: string}> | null = null
  private readonly reads = new Map<string, Promise<FileHead | 'missing'>>()

  constructor(
    private readonly arrays: SlurmArrays,
    private readonly opts: SlurmOptions,
    private readonly engine: EngineName,
    private readonly image: string,
    private readonly subject: string,
  ) {}

  inspect(): Promise<{identity: ImageIdentity; server: Engine['server']; where: string}> {
    this.inspected ??= this.task(inspectSpec(this.engine, this.image), async (stage, answer) => {
      const text = (await readCapped(path.join(stage, INSPECT_OUT), 4 * 1024 * 1024))?.toString('utf8') ?? ''
      let identity: ImageIdentity
      try {
        identity = parseImageInspect(text)
      } catch {
        throw new ReproError(`the image's inspect task on ${answer.where} gave no readable \`image inspect\``, {
          subject: this.subject,
          hint: `check the engine on the node with \`${this.engine} image inspect ${this.image}\``,
        })
      }
      return {identity, server: answer.server, where: answer.where}
    })
    return this.inspected
  }

  readFile(imageId: string, paths: string[]): Promise<FileHead | 'missing'> {
    const key = JSON.stringify([imageId, paths])
    let read = this.reads.get(key)
    if (!read) {
      read = this.task(inspectSpec(this.engine, this.image, {imageId, paths}), async (stage, answer) => {
        if (!answer.file) return 'missing'
        const tar = await readCapped(path.join(stage, FILE_OUT), 64 * 1024)
        return (tar && firstTarEntry(tar)) ?? 'missing'
      })
      this.reads.set(key, read)
    }
    return read
  }

  private task<T>(spec: RunSpec, read: (stage: string, answer: ReturnType<typeof inspectAnswer>) => Promise<T>): Promise<T> {
    return nodeTask(
      this.arrays,
      this.opts,
      this.subject,
      spec,
      `check the engine on the nodes with \`${this.engine} info\``,
      (stage, status) => read(stage, inspectAnswer(status, this.subject, this.engine)),
    )
  }
}

/** The identify task's spec (pure). */
export function identifySpec(python: string): Extract<RunSpec, {identify: unknown}> {
  return {schema: RUN_SPEC_SCHEMA, identify: {python}, timeout_seconds: 60, status: STAGED.status}
}

/** A python target's identity from its identify task's status, or the one-line error naming the node (pure). */
export function pythonIdentity(status: NodeStatus, interpreter: string, subject: string): TargetIdentity {
  const where = `node ${status.node.slice(0, 64)}`
  const answer = status.identify
  if (!answer || answer.error || !answer.real_path)
    throw new ReproError(`on ${where}: ${answer?.error || `the identify task ended without an answer (${status.terminated ?? 'none'})`}`, {
      subject,
      hint: 'pass the path of a python interpreter (with torch) as the nodes name it, e.g. --python /usr/bin/python3',
    })
  return {
    kind: 'python',
    reference: interpreter,
    details: {path: interpreter, real_path: answer.real_path, size: answer.size, mtime: answer.mtime, identified_on: where},
  }
}

/** Identify a python target's interpreter on a node (an identify task). */
export function identifyPythonOnNode(
  arrays: SlurmArrays,
  opts: SlurmOptions,
  interpreter: string,
  subject: string,
): Promise<TargetIdentity> {
  return nodeTask(arrays, opts, subject, identifySpec(interpreter), 'see `sinfo` and the node’s slurmd log', async (_stage, status) =>
    pythonIdentity(status, interpreter, subject),
  )
}

/** Stage one task (an inspect or identify spec), run it as an array task, read its answer; the stage goes after. */
function nodeTask<T>(
  arrays: SlurmArrays,
  opts: SlurmOptions,
  subject: string,
  spec: RunSpec,
  overdueHint: string,
  read: (stage: string, status: NodeStatus) => Promise<T>,
): Promise<T> {
  return withStage(opts.staging, 'inspect-', async (stage) => {
    await fs.writeFile(path.join(stage, STAGED.spec), JSON.stringify(spec, null, 2))
    // `order`: before any run's folder, should one share the array
    const cell = await arrays.submit(subject, {stage, python: 'python3', order: ''}, INSPECT_SECONDS, [])
    try {
      const status = await awaitStatus(arrays, cell, stage, {subject, timeoutMs: spec.timeout_seconds * 1000}).catch((e: unknown) => {
        if (!(e instanceof TaskOverdue)) throw e
        throw new ReproError(`the target's inspect task (Slurm job ${cell.jobId}) did not answer in ${spec.timeout_seconds} s`, {
          subject,
          hint: overdueHint,
        })
      })
      return await read(stage, status)
    } finally {
      cell.release()
    }
  })
}
