// The installed distributions of a local python, for the run-cache key: listed by the
// interpreter itself (~20 ms a process, once per run), or taken from a memo that is valid while
// nothing the listing was read from has changed. The listing names every folder on sys.path and
// the dist-/egg-info entries in them; the memo keeps those paths, plus what decides sys.path
// (site folders present or not, .pth and *customize.py files, pyvenv.cfg, the interpreter),
// with each one's device, inode, size, mtime and ctime. pip or apt adding, removing or
// replacing a distribution renames an entry in a site folder (the folder's mtime changes) or
// rewrites its info entry (its own times change), so the stats differ and python lists again.

import {createHash, randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import path from 'node:path'
import {spawnCapped} from './process.js'

// Lists dist-info/egg-info entries (and their mtimes) on the interpreter's full sys.path;
// `site` is imported explicitly because -S skipped it, so user/venv site dirs count too. The
// -c script's own folder ('', repro's cwd) is left out: the probe never runs from there.
// After a NUL line: the paths the listing depends on, as JSON (for the memo).
const DISTRIBUTIONS_SCRIPT = [
  'import json, os, site, sys',
  'if sys.path and sys.path[0] == "":',
  '    del sys.path[0]',
  'site.main()',
  'out = []',
  'watch = [sys.executable]',
  'for d in sys.path:',
  '    watch.append(d)',
  '    try:',
  '        names = sorted(os.listdir(d))',
  '    except OSError:',
  '        continue',
  '    for n in names:',
  '        if n.endswith((".dist-info", ".egg-info")):',
  '            out.append("%s/%s %d" % (d, n, int(os.stat(os.path.join(d, n)).st_mtime)))',
  '            watch.append(os.path.join(d, n))',
  '        elif n.endswith(".pth") or n in ("sitecustomize.py", "usercustomize.py"):',
  '            watch.append(os.path.join(d, n))',
  'try:',
  '    watch += list(site.getsitepackages()) + [site.getusersitepackages()]',
  'except AttributeError:',
  '    pass',
  'exe = os.path.dirname(sys.executable)',
  'watch += [os.path.join(exe, "pyvenv.cfg"), os.path.join(os.path.dirname(exe), "pyvenv.cfg")]',
  'print("\\n".join(out))',
  'print("\\0")',
  'print(json.dumps(sorted(set(watch))))',
].join('\n')

/** Bump when the listing or the memo's contents change: old memos are not read. */
const MEMO_FORMAT = 1
/** Memos kept at most (one per interpreter); the oldest are removed on a write. */
const MEMO_KEEP = 64
/** A path changed this close before the listing began may have changed under it: no memo then. */
const SETTLE_MS = 2000

export interface Distributions {
  /** sha256 of the listing */
  digest: string
  /** whether the memo answered (no python started) */
  memo: boolean
}

export class DistributionsError extends Error {
  override name = 'DistributionsError'
}

interface Memo {
  format: number
  watch: string[]
  stats: string
  digest: string
}

/** Each path's device, inode, size, mtime and ctime (ns), or why it could not be read. */
async function statLines(paths: string[]): Promise<{lines: string[]; newestCtimeNs: bigint}> {
  let newestCtimeNs = 0n
  const lines = await Promise.all(
    paths.map(async (p) => {
      try {
        const s = await fs.stat(p, {bigint: true})
        if (s.ctimeNs > newestCtimeNs) newestCtimeNs = s.ctimeNs
        return `${p}\0${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`
      } catch (e) {
        return `${p}\0${(e as NodeJS.ErrnoException).code ?? 'error'}`
      }
    }),
  )
  return {lines, newestCtimeNs}
}

const digestOf = (lines: string[]) => createHash('sha256').update(lines.join('\n')).digest('hex')

function memoFile(dir: string, interpreter: string, realPath: string): string {
  const name = createHash('sha256')
    .update(JSON.stringify([MEMO_FORMAT, interpreter, realPath]))
    .digest('hex')
  return path.join(dir, `${name}.json`)
}

async function readMemo(file: string): Promise<Memo | null> {
  try {
    const m = JSON.parse(await fs.readFile(file, 'utf8')) as Memo
    const ok =
      m.format === MEMO_FORMAT &&
      Array.isArray(m.watch) &&
      m.watch.every((p) => typeof p === 'string') &&
      typeof m.stats === 'string' &&
      typeof m.digest === 'string'
    return ok ? m : null
  } catch {
    return null
  }
}

async function writeMemo(dir: string, file: string, memo: Memo): Promise<void> {
  try {
    await fs.mkdir(dir, {recursive: true})
    const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
    try {
      await fs.writeFile(tmp, JSON.stringify(memo))
      await fs.rename(tmp, file)
    } finally {
      await fs.rm(tmp, {force: true})
    }
    const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json'))
    if (names.length <= MEMO_KEEP) return
    const dated = await Promise.all(names.map(async (n) => ({n, t: (await fs.stat(path.join(dir, n)).catch(() => null))?.mtimeMs ?? 0})))
    for (const {n} of dated.sort((a, b) => b.t - a.t).slice(MEMO_KEEP)) await fs.rm(path.join(dir, n), {force: true})
  } catch {
    // a read-only or full cache folder: the next check lists again
  }
}

/**
 * The digest of `interpreter`'s installed distributions (its real path is `realPath`). With
 * `memoDir`, a memo whose paths all stat the same answers without starting python.
 */
export async function pythonDistributions(
  interpreter: string,
  realPath: string,
  opts: {env: Record<string, string>; memoDir?: string; settleMs?: number},
): Promise<Distributions> {
  const file = opts.memoDir ? memoFile(opts.memoDir, interpreter, realPath) : null
  const memo = file ? await readMemo(file) : null
  if (memo) {
    const now = await statLines([realPath, ...memo.watch])
    if (digestOf(now.lines) === memo.stats) return {digest: memo.digest, memo: true}
  }
  const started = BigInt(Date.now() - (opts.settleMs ?? SETTLE_MS)) * 1_000_000n
  const r = await spawnCapped(interpreter, ['-S', '-c', DISTRIBUTIONS_SCRIPT], {
    env: opts.env,
    timeoutMs: 30_000,
    stdoutCap: 4 * 1024 * 1024,
  })
  if (r.exitCode !== 0 || r.stdoutTruncated) throw new DistributionsError(r.stderrTail)
  const cut = r.stdout.lastIndexOf('\n\0\n')
  const listing = cut >= 0 ? r.stdout.slice(0, cut + 1) : r.stdout
  const digest = createHash('sha256').update(listing).digest('hex')
  if (file && cut >= 0) {
    let watch: string[] | null = null
    try {
      const parsed = JSON.parse(r.stdout.slice(cut + 3)) as unknown
      if (Array.isArray(parsed) && parsed.every((p) => typeof p === 'string')) watch = parsed
    } catch {
      watch = null
    }
    if (watch) {
      const stats = await statLines([realPath, ...watch])
      // something changed while (or just before) python listed: the listing may not match these stats
      if (stats.newestCtimeNs < started)
        await writeMemo(opts.memoDir!, file, {format: MEMO_FORMAT, watch, stats: digestOf(stats.lines), digest})
    }
  }
  return {digest, memo: false}
}
