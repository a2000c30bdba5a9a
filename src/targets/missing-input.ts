// A file or module the user's script could not find in the target, looked up on the host: when
// it is there but was not copied (git ignores it, a rule skipped it, or it lies outside the
// project), the one-line error names it and the flag that adds it.

import {promises as fs} from 'node:fs'
import path from 'node:path'
import {exists, isFile} from '../env/files.js'

/** run.json's error (untrusted: capped); `path` and `module` name what a script could not find. */
export interface ProbeError {
  type: string
  message: string
  /** missing_file: relative to the project root when inside the copy, else absolute in the target */
  path?: string
  /** missing_module: the dotted name */
  module?: string
}

/** The host side of a script's project copy (plain data; app/script-inputs.ts makes it). */
export interface ScriptProjectContext {
  /** the project root on the host */
  root: string
  /** the files came from git (so a file left out was ignored by it, unless a rule skipped it) */
  git: boolean
  /** copied paths, relative to root, forward slashes */
  copied: ReadonlySet<string>
  /** what the never-copied rules left out, and why */
  skipped: readonly {rel: string; reason: string}[]
  /** on the host: the script's folder (a module's: the cwd) and the working directory */
  scriptDir: string
  cwd: string
  /** how the user adds a path: --include, or script.include in repro.config.json */
  source: 'flags' | 'config'
}

export interface MissingInput {
  message: string
  hint: string
}

/** The message and fix for a missing_file / missing_module error, or null when the host cannot tell more. */
export async function explainMissingInput(err: ProbeError, ctx: ScriptProjectContext): Promise<MissingInput | null> {
  if (err.type === 'missing_file' && err.path) return missingFile(err.path, ctx)
  if (err.type === 'missing_module' && err.module) return missingModule(err.module, ctx)
  if (err.type === 'script_error' || err.type === 'notebook_cell_error') return mentionedFile(err.message, ctx)
  return null
}

/** Path-like words of a message: `data/train.bin`, `./config.yaml`, `weights.pt` (at most 20). */
const PATHISH = /(?:\.{0,2}\/)?[\w.-]+(?:\/[\w.-]+)+|\b[\w-]+\.[A-Za-z][\w]{0,7}\b/g

/**
 * A script that checks for its data itself (`if not os.path.exists(p): sys.exit(f"{p} is missing")`)
 * or raises on it in its own words: a path its message names, relative to the working directory,
 * that the host has and the copy lacks.
 */
async function mentionedFile(message: string, ctx: ScriptProjectContext): Promise<MissingInput | null> {
  for (const word of (message.match(PATHISH) ?? []).slice(0, 20)) {
    const rel = toRel(ctx.root, path.resolve(ctx.cwd, word))
    if (rel === null) continue
    const found = await missingFile(rel, ctx)
    if (found) return {message: `${message}: ${found.message.replace(/^the script needs /, '')}`, hint: found.hint}
  }
  return null
}

async function missingFile(p: string, ctx: ScriptProjectContext): Promise<MissingInput | null> {
  const rel = cleanRel(p)
  if (!rel || ctx.copied.has(rel) || !(await exists(path.join(ctx.root, rel)))) return null
  return {
    message: `the script needs ${rel}, which exists on the host but was not copied (${why(rel, ctx)})`,
    hint: addHint(topmostAbsent(rel, ctx), ctx),
  }
}

async function missingModule(name: string, ctx: ScriptProjectContext): Promise<MissingInput | null> {
  if (!/^[A-Za-z_][\w.]*$/.test(name)) return null
  const rel = name.split('.').join('/')
  for (const dir of unique([ctx.scriptDir, ctx.cwd, ctx.root])) {
    const found = await moduleAt(dir, rel, true)
    if (!found) continue
    const inRoot = toRel(ctx.root, found.path)
    if (inRoot === null) continue
    const copied = found.folder ? [...ctx.copied].some((c) => c.startsWith(`${inRoot}/`)) : ctx.copied.has(inRoot)
    if (copied) return null // it is in the copy: the import failed for another reason
    return {
      message: `the script imports ${name}, which exists on the host (${inRoot}${found.folder ? '/' : ''}) but was not copied (${why(inRoot, ctx)})`,
      hint: addHint(topmostAbsent(inRoot, ctx), ctx),
    }
  }
  // above the root: the script reaches out of its project (sys.path tricks, or the wrong root)
  let dir = ctx.root
  for (let i = 0; i < 8 && path.dirname(dir) !== dir; i++) {
    dir = path.dirname(dir)
    const found = await moduleAt(dir, rel, false)
    if (!found) continue
    return {
      message: `the script imports ${name}, found on the host at ${found.path}, outside the project ${ctx.root}`,
      hint:
        ctx.source === 'flags'
          ? `make the project a folder that holds both: --project ${dir}`
          : `set script.project in repro.config.json to a folder that holds both (${dir})`,
    }
  }
  return null
}

/** NAME.py, or a package folder (with __init__.py; within the project also a namespace package holding .py files). */
async function moduleAt(dir: string, rel: string, namespace: boolean): Promise<{path: string; folder: boolean} | null> {
  const file = path.join(dir, `${rel}.py`)
  if (await isFile(file)) return {path: file, folder: false}
  const folder = path.join(dir, rel)
  if (await isFile(path.join(folder, '__init__.py'))) return {path: folder, folder: true}
  if (namespace) {
    const names = await fs.readdir(folder).catch(() => [] as string[])
    if (names.some((n) => n.endsWith('.py'))) return {path: folder, folder: true}
  }
  return null
}

/** The topmost folder under the root of which nothing was copied, else the path itself. */
function topmostAbsent(rel: string, ctx: ScriptProjectContext): string {
  const parts = rel.split('/')
  for (let i = 1; i < parts.length; i++) {
    const prefix = `${parts.slice(0, i).join('/')}/`
    if (![...ctx.copied].some((c) => c.startsWith(prefix))) return prefix.slice(0, -1)
  }
  return rel
}

function why(rel: string, ctx: ScriptProjectContext): string {
  const rule = ctx.skipped.find((s) => rel === s.rel || rel.startsWith(`${s.rel}/`))
  if (rule) return `${rule.rel} is ${rule.reason}`
  return ctx.git ? 'git ignores it' : 'it was not there when repro copied the project'
}

function addHint(rel: string, ctx: ScriptProjectContext): string {
  return ctx.source === 'flags' ? `add it with --include ${rel}` : `add "${rel}" to script.include in repro.config.json`
}

/** A relative path without `..`, forward slashes; null for an absolute one (it lies outside the copy). */
function cleanRel(p: string): string | null {
  if (p.startsWith('/') || p.includes('\0')) return null
  const norm = path.posix.normalize(p).replace(/\/$/, '')
  return norm === '.' || norm.startsWith('../') || norm === '..' ? null : norm
}

function toRel(root: string, p: string): string | null {
  const r = path.relative(root, p)
  return r === '' || r.startsWith('..') || path.isAbsolute(r) ? null : r.split(path.sep).join('/')
}

const unique = (xs: string[]) => [...new Set(xs)]
