// The user's training script as probe input: the script and its include folders copied into the
// run's input directory (which reaches the target like the probe: copied, never bind-mounted),
// size-capped with a clear error, and digested so an edited script never reuses a cached run.

import {createHash} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {ReproError} from '../errors.js'

export const SCRIPT_CAPS = {bytes: 64 * 1024 * 1024, files: 5000}

export interface ScriptSpec {
  /** the script on the host */
  path: string
  args: string[]
  /** folders on the host the script imports from (put on sys.path in the target) */
  include: string[]
  maxSteps: number
  /** also run it untraced and compare the final parameters (the observer check) */
  observer: boolean
}

interface FileEntry {
  from: string
  /** relative to the copy's root (script/…) */
  to: string
  size: number
}

/** Every regular file to copy (no symlinks: a link could reach anywhere on the host), capped. */
async function collectFiles(spec: ScriptSpec): Promise<FileEntry[]> {
  checkIncludeNames(spec)
  const stat = await fs.lstat(spec.path).catch(() => null)
  if (!stat?.isFile()) {
    throw new ReproError(`${spec.path} ${stat ? 'is not a regular file' : 'does not exist'}`, {
      subject: '--script',
      hint: 'pass the path of the training script, e.g. --script train.py',
    })
  }
  const files: FileEntry[] = [{from: spec.path, to: path.join('script', path.basename(spec.path)), size: stat.size}]
  for (const [i, dir] of spec.include.entries()) {
    const s = await fs.lstat(dir).catch(() => null)
    if (!s?.isDirectory())
      throw new ReproError(`${dir} is not a directory`, {subject: '--include', hint: 'pass folders the script imports from'})
    for (const e of await fs.readdir(dir, {recursive: true, withFileTypes: true})) {
      if (!e.isFile()) continue
      const full = path.join(e.parentPath, e.name)
      if (full.split(path.sep).some((p) => p === '__pycache__' || p === '.git')) continue
      files.push({from: full, to: path.join('script', includeName(spec, i), path.relative(dir, full)), size: (await fs.stat(full)).size})
    }
  }
  const bytes = files.reduce((n, f) => n + f.size, 0)
  if (files.length > SCRIPT_CAPS.files || bytes > SCRIPT_CAPS.bytes) {
    throw new ReproError(
      `the script and its include folders are ${files.length} files, ${bytes} bytes: over the cap of ${SCRIPT_CAPS.files} files, ${SCRIPT_CAPS.bytes} bytes`,
      {
        subject: '--script',
        hint: 'include only the folders the script imports (--include); keep datasets small or generate them in the script',
      },
    )
  }
  return files
}

/**
 * An include folder keeps its name beside the script (src/, data/), so the script's imports and
 * relative paths work as in the repo where script and folders sit side by side.
 */
function includeName(spec: ScriptSpec, i: number): string {
  return path.basename(path.resolve(spec.include[i]!))
}

/** Two include folders with one name, or one named like the script, would overwrite each other. */
export function checkIncludeNames(spec: ScriptSpec): void {
  const names = spec.include.map((_, i) => includeName(spec, i))
  const clash = names.find((n, i) => names.indexOf(n) !== i || n === path.basename(spec.path))
  if (clash)
    throw new ReproError(`two of the script's files would both be ${clash} in the target`, {
      subject: '--include',
      hint: 'include folders with different names (the script and each folder are copied side by side)',
    })
}

/** sha256 over the files' relative names and contents, in name order. */
export async function scriptDigest(spec: ScriptSpec): Promise<string> {
  const h = createHash('sha256')
  for (const f of (await collectFiles(spec)).sort((a, b) => (a.to < b.to ? -1 : 1))) {
    h.update(f.to)
      .update('\0')
      .update(await fs.readFile(f.from))
      .update('\0')
  }
  return h.digest('hex')
}

/** Copy the script and its includes under `inputDir/script/`; returns the probe config's `script` section. */
export async function writeScriptInputs(inputDir: string, spec: ScriptSpec, sha256: string) {
  for (const f of await collectFiles(spec)) {
    await fs.mkdir(path.dirname(path.join(inputDir, f.to)), {recursive: true})
    await fs.copyFile(f.from, path.join(inputDir, f.to))
  }
  return scriptSection(spec, sha256)
}

/** The probe config's script section (paths relative to the config's directory). */
export function scriptSection(spec: ScriptSpec, sha256: string) {
  return {
    path: path.join('script', path.basename(spec.path)),
    args: spec.args,
    cwd: null,
    max_steps: spec.maxSteps,
    include: spec.include.map((_, i) => path.join('script', includeName(spec, i))),
    observer: spec.observer,
    sha256,
  }
}
