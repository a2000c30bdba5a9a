// The user's project as the unit copied into a target (issue 26): its root, the files in it
// (git's tracked and untracked-unignored files, or every file when it is no git work tree),
// what is never copied (.git, __pycache__, environments, cache and output folders, symlinks
// leaving the tree), the --include additions, and the size cap with the largest entries named.

import {execFile} from 'node:child_process'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {promisify} from 'node:util'
import {ReproError} from '../errors.js'
import {hasCacheTag} from './out-dir.js'
import {exists, isFile} from '../env/files.js'
import {surelyOutsideGit} from '../env/git.js'

export const SCRIPT_CAPS = {bytes: 64 * 1024 * 1024, files: 5000}

export interface ProjectFile {
  /** relative to the project root, with forward slashes */
  rel: string
  /** the file on the host (a link inside the tree: its content is copied) */
  from: string
  size: number
}

export interface ProjectManifest {
  root: string
  /** the files came from git (tracked and untracked-unignored) */
  git: boolean
  /** sorted by rel */
  files: ProjectFile[]
  bytes: number
  /** folders and links left out by the rules, with why (for the hints about missing files) */
  skipped: {rel: string; reason: string}[]
  /** one line each, for stderr */
  warnings: string[]
}

/** What the collector is asked for: the root, the extra includes and what is excluded besides the rules. */
export interface ProjectRequest {
  root: string
  /** absolute paths inside root */
  include: string[]
  /** absolute folders or files never copied (the run's own output folder, check's baseline report) */
  exclude: string[]
  /** always copied, even when git ignores it (the script itself) */
  always?: string
  /** how the user names an include in hints: '--include' or 'script.include' */
  includeName: string
}

/** The nearest folder at or above `dir` holding repro.config.json or .git; else `dir` itself. */
export async function findProjectRoot(dir: string): Promise<string> {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((await isFile(path.join(d, 'repro.config.json'))) || (await exists(path.join(d, '.git')))) return d
    if (path.dirname(d) === d) return path.resolve(dir)
  }
}

const posix = (rel: string) => rel.split(path.sep).join('/')

export async function collectProject(req: ProjectRequest): Promise<ProjectManifest> {
  const root = path.resolve(req.root)
  const realRoot = await fs.realpath(root)
  const rules = new Rules(root, req.exclude)
  const listed = await gitFiles(root)
  const files = new Map<string, ProjectFile>()
  const links: string[] = []
  const excluded = new Set(req.exclude.map((e) => path.resolve(e)))
  const add = async (rel: string) => {
    if (excluded.has(path.join(root, ...rel.split('/')))) return
    const f = await fileAt(root, realRoot, rel, rules, links)
    if (f) files.set(f.rel, f)
  }
  if (listed) {
    for (const rel of listed) if (!(await rules.skipsPath(rel))) await add(rel)
  } else {
    for (const rel of await walk(root, '', rules)) await add(rel)
  }
  if (req.always) {
    const rel = posix(path.relative(root, req.always))
    if (!files.has(rel)) await add(rel)
  }
  const warnings: string[] = []
  for (const inc of req.include) {
    const rel = posix(path.relative(root, inc))
    const stat = await fs.stat(inc).catch(() => null)
    let added = 0
    if (stat?.isDirectory()) {
      for (const r of await walk(root, rel, rules)) {
        if (files.has(r)) continue
        await add(r)
        if (files.has(r)) added++
      }
    } else if (!files.has(rel)) {
      await add(rel)
      if (files.has(rel)) added++
    }
    if (added === 0) warnings.push(`${req.includeName} ${rel}: adds nothing, it is already wholly in the project copy`)
  }
  if (links.length)
    warnings.push(
      `not copied, symlinks leading out of the project (or nowhere): ${links.slice(0, 5).join(', ')}${links.length > 5 ? ` and ${links.length - 5} more` : ''} — to copy what they point at, move it into the project (and ${req.includeName} it if git ignores it), or make the project a folder that holds it (--project)`,
    )
  const included = req.include.map((i) => posix(path.relative(root, i)))
  const nested = rules.nested.filter((n) => !included.some((i) => n === i || n.startsWith(`${i}/`)))
  warnings.push(
    ...nested.map((n) => `${n}/ is a nested git repository or submodule and is not copied — add it with ${req.includeName} ${n}`),
  )
  const sorted = [...files.values()].sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0))
  return {
    root,
    git: listed !== null,
    files: sorted,
    bytes: sorted.reduce((n, f) => n + f.size, 0),
    skipped: [...rules.skipped, ...links.map((l) => ({rel: l.split(' -> ')[0]!, reason: 'a symlink leading out of the project'}))],
    warnings,
  }
}

/** The over-cap error, naming the largest top-level entries of the copy. */
export function checkCaps(m: ProjectManifest): void {
  if (m.files.length <= SCRIPT_CAPS.files && m.bytes <= SCRIPT_CAPS.bytes) return
  const largest = largestEntries(m)
    .slice(0, 5)
    .map((e) => `${e.name} ${formatBytes(e.bytes)}`)
    .join(', ')
  throw new ReproError(
    `the project copy of ${m.root} is ${m.files.length} files, ${formatBytes(m.bytes)}: over the cap of ${SCRIPT_CAPS.files} files, ${formatBytes(SCRIPT_CAPS.bytes)} (largest: ${largest})`,
    {
      subject: '--script',
      hint: 'see what would be copied with --list-inputs; have git ignore what the script does not read, or pass --project a smaller folder',
    },
  )
}

/** Top-level folders (with a trailing /) and files of the copy, largest first. */
export function largestEntries(m: ProjectManifest): {name: string; bytes: number}[] {
  const sizes = new Map<string, number>()
  for (const f of m.files) {
    const i = f.rel.indexOf('/')
    const name = i < 0 ? f.rel : `${f.rel.slice(0, i)}/`
    sizes.set(name, (sizes.get(name) ?? 0) + f.size)
  }
  return [...sizes].map(([name, bytes]) => ({name, bytes})).sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1))
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(1)} ${units[u]}`
}

/** The never-copied rules, memoized per folder. */
class Rules {
  readonly skipped: {rel: string; reason: string}[] = []
  readonly nested: string[] = []
  private readonly memo = new Map<string, string | null>()
  constructor(
    private readonly root: string,
    private readonly exclude: string[],
  ) {}

  /** Why the folder `rel` (relative to root) is never copied, or null. */
  async folderReason(rel: string): Promise<string | null> {
    let r = this.memo.get(rel)
    if (r !== undefined) return r
    const abs = path.join(this.root, rel)
    const name = path.posix.basename(rel)
    r =
      name === '.git'
        ? '.git'
        : name === '__pycache__'
          ? '__pycache__'
          : this.exclude.some((e) => path.resolve(e) === abs)
            ? "this run's output folder"
            : (await isFile(path.join(abs, 'pyvenv.cfg'))) || (await exists(path.join(abs, 'conda-meta')))
              ? 'a virtual environment'
              : (await hasCacheTag(abs))
                ? 'a cache or repro output folder (CACHEDIR.TAG)'
                : null
    this.memo.set(rel, r)
    if (r && r !== '__pycache__' && r !== '.git') this.skipped.push({rel, reason: r})
    return r
  }

  /** A listed file under a never-copied folder (checked from the top down). */
  async skipsPath(rel: string): Promise<boolean> {
    const parts = rel.split('/')
    if (parts[parts.length - 1] === '.git') return true
    for (let i = 1; i < parts.length; i++) if (await this.folderReason(parts.slice(0, i).join('/'))) return true
    return false
  }
}

/** Every file under `rel` (a folder relative to root), the rules applied beneath it; links are returned for fileAt to judge. */
async function walk(root: string, rel: string, rules: Rules): Promise<string[]> {
  const out: string[] = []
  const entries = await fs.readdir(path.join(root, rel), {withFileTypes: true})
  for (const e of entries) {
    const r = rel ? `${rel}/${e.name}` : e.name
    if (e.isDirectory()) {
      if (!(await rules.folderReason(r))) out.push(...(await walk(root, r, rules)))
    } else if ((e.isFile() || e.isSymbolicLink()) && e.name !== '.git') out.push(r)
  }
  return out
}

/** A regular file (or a link to one inside the tree) at `rel`; links leaving the tree are noted in `links`. */
async function fileAt(root: string, realRoot: string, rel: string, rules: Rules, links: string[]): Promise<ProjectFile | null> {
  const from = path.join(root, ...rel.split('/'))
  const l = await fs.lstat(from).catch(() => null)
  if (!l) return null // listed by git but gone from disk
  if (l.isFile()) return {rel, from, size: l.size}
  if (l.isDirectory()) {
    // git lists a submodule, or an untracked nested repository, as one entry
    if (!rules.nested.includes(rel)) rules.nested.push(rel)
    return null
  }
  if (!l.isSymbolicLink()) return null
  const target = await fs.realpath(from).catch(() => null)
  const inside = target !== null && (target === realRoot || target.startsWith(realRoot + path.sep))
  const stat = target ? await fs.stat(target).catch(() => null) : null
  if (!inside || !stat) {
    links.push(`${rel} -> ${await fs.readlink(from).catch(() => '?')}`)
    return null
  }
  if (stat.isFile()) return {rel, from, size: stat.size}
  rules.skipped.push({rel, reason: 'a symlink to a folder (not followed)'})
  return null
}

const run = promisify(execFile)

/** git's view of the root (tracked + untracked-unignored, relative to root), or null outside a work tree. */
async function gitFiles(root: string): Promise<string[] | null> {
  // no repository anywhere above the root: git would list nothing, so do not start it
  if (await surelyOutsideGit(root)) return null
  try {
    const {stdout} = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: root,
      maxBuffer: 256 * 1024 * 1024,
      encoding: 'utf8',
    })
    // a path listed twice (a merge conflict's stages) is one file
    return [...new Set(stdout.split('\0').filter(Boolean))].map((p) => p.replace(/\/$/, ''))
  } catch {
    return null
  }
}
