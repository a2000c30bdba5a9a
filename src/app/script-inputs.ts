// The user's training script (or module, or notebook) as probe input: its project copied into
// the run's input directory under project/ (which reaches the target like the probe: copied,
// never bind-mounted), layout and working directory kept, size-capped with a clear error, and
// digested whole so an edited sibling module never reuses a cached run.

import {createHash} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import type {ScriptProjectContext} from '../targets/target.js'
import {ReproError} from '../errors.js'
import {clean, NOTEBOOK_CAPS, NotebookError, parseNotebook} from '../core/notebook.js'
import {checkCaps, collectProject, findProjectRoot, formatBytes, type ProjectManifest, SCRIPT_CAPS} from './script-project.js'

export {SCRIPT_CAPS} from './script-project.js'

/** The folder of the inputs directory the project is copied into. */
export const PROJECT_DIR = 'project'

export interface ScriptSpec {
  kind: 'script' | 'module' | 'notebook'
  /** the script or notebook on the host (absolute); null for a module */
  path: string | null
  /** run as `python -m` does (kind module) */
  module: string | null
  /** the project root on the host (absolute): the unit copied */
  root: string
  /** the working directory on the host (absolute, inside root) */
  cwd: string
  args: string[]
  /** files or folders on the host (absolute, inside root) added beyond what git lists */
  include: string[]
  maxSteps: number
  /** ranks torchrun starts (1: one process, as `python path`) */
  nproc: number
  /** also run it untraced and compare the final parameters (the observer check) */
  observer: boolean
  /** notebooks: go on past a cell that raises */
  allowErrors: boolean
  /** folders or files never copied besides the rules (the run's own output folder, check's baseline) */
  exclude: string[]
  /** where the user named it, for hints: command-line flags or repro.config.json */
  source: 'flags' | 'config'
}

/** What the user asked for, paths as given (relative to `base`). */
export interface ScriptRequest {
  script?: string
  module?: string
  project?: string
  cwd?: string
  include: string[]
  args: string[]
  maxSteps: number
  /** ranks under torchrun (default 1) */
  nproc?: number
  observer: boolean
  allowErrors: boolean
  /** relative paths are relative to this (where repro runs, or the config's folder); also the default cwd */
  base: string
  source: 'flags' | 'config'
}

/** A notebook is parsed and validated on the host: hostile or broken JSON is one line, before any target runs. */
async function checkNotebook(file: string, size: number, subject: string): Promise<void> {
  const shown = path.basename(file)
  if (size > NOTEBOOK_CAPS.bytes)
    throw new ReproError(`${clean(shown, 100)} is ${formatBytes(size)}: over the notebook cap of ${formatBytes(NOTEBOOK_CAPS.bytes)}`, {
      subject,
      hint: 'clear its outputs (jupyter nbconvert --clear-output --inplace) or export the training code to a script',
    })
  try {
    parseNotebook(await fs.readFile(file, 'utf8'), shown)
  } catch (e) {
    if (e instanceof NotebookError) throw new ReproError(e.message, {subject, hint: e.hint, cause: e})
    throw e
  }
}

const MODULE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/

/** Resolve and check what the user asked for: one line naming the flag (or config field) for each mistake. */
export async function resolveScriptSpec(req: ScriptRequest): Promise<ScriptSpec> {
  const name = (flag: string, field = flag) => (req.source === 'flags' ? `--${flag}` : `script.${field}`)
  const abs = (p: string) => path.resolve(req.base, p)
  if (req.script && req.module)
    throw new ReproError('--script and --module both given', {subject: '--module', hint: 'run either a script file or a module'})
  let scriptPath: string | null = null
  if (req.module !== undefined) {
    if (!MODULE_NAME.test(req.module) || req.module.length > 256)
      throw new ReproError(`${JSON.stringify(req.module)} is not a dotted module name`, {
        subject: name('module'),
        hint: 'name the module as python -m takes it, e.g. --module pkg.train',
      })
  } else {
    scriptPath = abs(req.script ?? '')
    const stat = await fs.stat(scriptPath).catch(() => null)
    if (!stat?.isFile())
      throw new ReproError(`${scriptPath} ${stat ? 'is not a regular file' : 'does not exist'}`, {
        subject: name('script', 'path'),
        hint: 'pass the path of the training script, e.g. --script train.py',
      })
    if (scriptPath.endsWith('.ipynb')) await checkNotebook(scriptPath, stat.size, name('script', 'path'))
  }
  const nproc = req.nproc ?? 1
  if (nproc > 1 && scriptPath?.endsWith('.ipynb'))
    throw new ReproError(
      `${path.basename(scriptPath)} is a notebook: ${name('script-nproc', 'nproc')} ${nproc} starts ranks with torchrun, which runs scripts and modules`,
      {
        subject: name('script-nproc', 'nproc'),
        hint: `export the training code to a script (jupyter nbconvert --to script ${path.basename(scriptPath)}) and pass that, or drop ${name('script-nproc', 'nproc')}`,
      },
    )
  // a notebook runs in its own folder, as Jupyter starts its kernel there
  const cwd = abs(req.cwd ?? (scriptPath?.endsWith('.ipynb') ? path.dirname(scriptPath) : '.'))
  if (!(await fs.stat(cwd).catch(() => null))?.isDirectory())
    throw new ReproError(`${cwd} is not a directory`, {subject: name('cwd'), hint: 'pass the folder the script runs from'})
  let root: string
  if (req.project !== undefined) {
    root = abs(req.project)
    if (!(await fs.stat(root).catch(() => null))?.isDirectory())
      throw new ReproError(`${root} is not a directory`, {subject: name('project'), hint: 'pass the folder holding the project'})
  } else root = await findProjectRoot(scriptPath ? path.dirname(scriptPath) : cwd)
  const inside = (p: string) => p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep)
  if (scriptPath && !inside(scriptPath))
    throw new ReproError(`the script ${scriptPath} is outside the project ${root}`, {
      subject: name('project'),
      hint: 'pass a project folder that holds the script',
    })
  if (!inside(cwd))
    throw new ReproError(`the working directory ${cwd} is outside the project ${root}`, {
      subject: name('cwd'),
      hint: `run repro from inside the project, or pass ${name('cwd')} a folder inside it (or ${name('project')} a folder holding both)`,
    })
  const include = req.include.map(abs)
  for (const inc of include) {
    if (inc === root)
      throw new ReproError(`${inc} is the project root: it would copy everything the repo ignores, repro's reports included`, {
        subject: name('include'),
        hint: `name the ignored folders the script reads instead, e.g. ${name('include')} data`,
      })
    if (!inside(inc))
      throw new ReproError(`${inc} is outside the project ${root}`, {
        subject: name('include'),
        hint: `include files inside the project (it keeps their path relative to the root), or pass ${name('project')} a folder holding it`,
      })
    if (!(await fs.lstat(inc).catch(() => null)))
      throw new ReproError(`${inc} does not exist`, {subject: name('include'), hint: 'pass a file or folder of the project'})
  }
  return {
    kind: req.module !== undefined ? 'module' : scriptPath!.endsWith('.ipynb') ? 'notebook' : 'script',
    path: scriptPath,
    module: req.module ?? null,
    root,
    cwd,
    args: req.args,
    include,
    maxSteps: req.maxSteps,
    nproc,
    observer: req.observer,
    allowErrors: req.allowErrors,
    exclude: [],
    source: req.source,
  }
}

// One audit copies one snapshot of the project into every run, and warns once.
const manifests = new WeakMap<ScriptSpec, Promise<ProjectManifest>>()

/** The files of the project copy (memoized per spec); its warnings go to stderr once. */
export function scriptProject(
  spec: ScriptSpec,
  warn: (line: string) => unknown = (line) => process.stderr.write(`repro: warning: ${line}\n`),
) {
  let m = manifests.get(spec)
  if (!m) {
    m = collectProject({
      root: spec.root,
      include: spec.include,
      exclude: spec.exclude,
      ...(spec.path ? {always: spec.path} : {}),
      includeName: spec.source === 'flags' ? '--include' : 'script.include',
    }).then((manifest) => {
      for (const w of manifest.warnings) warn(w)
      return manifest
    })
    manifests.set(spec, m)
  }
  return m
}

/** sha256 over the copy's relative names and contents, in name order (checks the cap first). */
export async function scriptDigest(spec: ScriptSpec): Promise<string> {
  const m = await scriptProject(spec)
  checkCaps(m)
  const h = createHash('sha256')
  for (const f of m.files)
    h.update(f.rel)
      .update('\0')
      .update(await fs.readFile(f.from))
      .update('\0')
  return h.digest('hex')
}

/** Copy the project under `inputDir/project/`; returns the probe config's `script` section. */
export async function writeScriptInputs(inputDir: string, spec: ScriptSpec, sha256: string) {
  const m = await scriptProject(spec)
  checkCaps(m)
  for (const f of m.files) {
    const to = path.join(inputDir, PROJECT_DIR, ...f.rel.split('/'))
    await fs.mkdir(path.dirname(to), {recursive: true})
    await fs.copyFile(f.from, to)
  }
  return scriptSection(spec, sha256)
}

/** `p` on the host as it is in the copy, relative to the config's directory (forward slashes). */
function mapped(spec: ScriptSpec, p: string): string {
  const rel = path.relative(spec.root, p).split(path.sep).filter(Boolean)
  return [PROJECT_DIR, ...rel].join('/')
}

/** The probe config's script section (paths relative to the config's directory). */
export function scriptSection(spec: ScriptSpec, sha256: string) {
  return {
    kind: spec.kind,
    path: spec.path ? mapped(spec, spec.path) : null,
    module: spec.module,
    root: PROJECT_DIR,
    args: spec.args,
    cwd: mapped(spec, spec.cwd),
    // extra sys.path folders: the layout is kept now, so none (kept for older probes' configs)
    include: [] as string[],
    max_steps: spec.maxSteps,
    nproc: spec.nproc,
    observer: spec.observer,
    allow_errors: spec.allowErrors,
    sha256,
  }
}

/** What a probe needs to name a missing file or module (targets/missing-input.ts). */
export async function scriptProjectContext(spec: ScriptSpec): Promise<ScriptProjectContext> {
  const m = await scriptProject(spec)
  return {
    root: m.root,
    git: m.git,
    copied: new Set(m.files.map((f) => f.rel)),
    skipped: m.skipped,
    scriptDir: spec.path ? path.dirname(spec.path) : spec.cwd,
    cwd: spec.cwd,
    source: spec.source,
  }
}

export interface InputListing {
  root: string
  cwd: string
  script: string | null
  module: string | null
  files: {path: string; bytes: number}[]
  total_files: number
  total_bytes: number
  over_cap: boolean
}

/** --list-inputs: what would be copied, without running anything. */
export async function listInputs(spec: ScriptSpec): Promise<InputListing> {
  const m = await scriptProject(spec)
  return {
    root: m.root,
    cwd: mapped(spec, spec.cwd),
    script: spec.path ? mapped(spec, spec.path) : null,
    module: spec.module,
    files: m.files.map((f) => ({path: f.rel, bytes: f.size})),
    total_files: m.files.length,
    total_bytes: m.bytes,
    over_cap: m.files.length > SCRIPT_CAPS.files || m.bytes > SCRIPT_CAPS.bytes,
  }
}

export function renderInputListing(l: InputListing): string {
  const sizes = l.files.map((f) => formatBytes(f.bytes))
  const w = Math.max(0, ...sizes.map((s) => s.length))
  const lines = l.files.map((f, i) => `${sizes[i]!.padStart(w)}  ${f.path}`)
  lines.push(
    '',
    `${l.total_files} files, ${formatBytes(l.total_bytes)} (cap: ${SCRIPT_CAPS.files} files, ${formatBytes(SCRIPT_CAPS.bytes)})${l.over_cap ? ' — over the cap: the run would refuse' : ''}`,
    `root    ${l.root} → ${PROJECT_DIR}`,
    `cwd     ${l.cwd}`,
    l.script ? `script  ${l.script}` : `module  ${l.module}`,
  )
  return lines.join('\n')
}

/** `--list-inputs`: resolve the request and list its copy (`outDir`: the audit's, never copied). */
export async function listScriptInputs(req: ScriptRequest, outDir: string): Promise<InputListing> {
  const spec = await resolveScriptSpec(req)
  return listInputs({...spec, exclude: [outDir]})
}
