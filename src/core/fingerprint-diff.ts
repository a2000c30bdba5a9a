// Diffs two environment fingerprints: flatten each nested JSON object to path → scalar, group
// the paths by what they influence (framework, GPU, CPU math, ...), and put changes first.

import {diffWords} from 'diff'
import type {Fingerprint, Json} from './types.js'

export type Scalar = string | number | boolean | null

export const FINGERPRINT_GROUPS = ['framework', 'gpu', 'cpu_math', 'runtime', 'hardware', 'system', 'build', 'packages'] as const
export type FingerprintGroup = (typeof FINGERPRINT_GROUPS)[number]

export interface TextChange {
  value: string
  added?: true
  removed?: true
}

export interface FingerprintRow {
  group: FingerprintGroup
  path: string
  /** undefined = the path does not exist on that side (null is a real value). */
  a: Scalar | undefined
  b: Scalar | undefined
  changed: boolean
  change: 'added' | 'removed' | 'changed' | 'same'
  /** Word-level diff, only when both sides are strings and differ (and the diff is small). */
  text?: TextChange[]
}

export interface FingerprintDiff {
  rows: FingerprintRow[]
  summary: {changed: number; byGroup: Record<FingerprintGroup, number>}
}

interface Flat {
  value: Scalar
  group: FingerprintGroup
}

const GPU_ROLES = new Set(['cudnn', 'cublas', 'cudart', 'nccl', 'cuda_other'])
const CPU_MATH_ROLES = new Set(['blas', 'lapack', 'openmp', 'mkl', 'onednn'])
const CPU_MATH_CONFIG = new Set(['onednn', 'mkl', 'openmp', 'blas_info', 'lapack_info', 'cpu_capability'])

function libraryGroup(role: string): FingerprintGroup {
  if (GPU_ROLES.has(role)) return 'gpu'
  if (CPU_MATH_ROLES.has(role)) return 'cpu_math'
  if (role === 'torch') return 'framework'
  return 'system'
}

/** Group of a generic (non-library) path. Paths use `.` for keys and `[i]` for array items. */
export function pathGroup(path: string): FingerprintGroup {
  const under = (prefix: string): boolean => path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`)
  if (under('torch.config.build_settings') || path === 'torch.config.compiler') return 'build'
  if (path.startsWith('torch.config.') && CPU_MATH_CONFIG.has(path.slice('torch.config.'.length))) return 'cpu_math'
  if (under('torch') || under('numpy') || path === 'probe_version') return 'framework'
  if (under('cuda.devices')) return 'hardware'
  if (under('cuda')) return 'gpu'
  if (path === 'threads.cpu_count' || path === 'threads.affinity' || path === 'os.machine') return 'hardware'
  if (under('flags') || under('threads') || under('env') || under('knobs')) return 'runtime'
  if (under('attention')) return 'framework'
  if (under('distributions')) return 'packages'
  return 'system' // python.*, os.*, schema and anything unknown
}

function isObject(v: Json | undefined): v is {[key: string]: Json} {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function str(v: Json | undefined): string | null {
  return typeof v === 'string' ? v : null
}

/** A scalar as is; a nested value (malformed input) as its JSON text, so it is still compared. */
function scalar(v: Json | undefined): Scalar {
  if (v === undefined) return null
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : v
}

/** Flattens a fingerprint; keys that collide (duplicate libraries, odd key spellings) get `#2`, `#3`. */
export function flattenFingerprint(fp: Fingerprint): Map<string, Flat> {
  const out = new Map<string, Flat>()
  const put = (path: string, value: Scalar, group: FingerprintGroup): void => {
    let p = path
    for (let k = 2; out.has(p); k++) p = `${path}#${k}`
    out.set(p, {value, group})
  }
  const walk = (path: string, v: Json): void => {
    if (Array.isArray(v)) {
      for (const [i, item] of v.entries()) walk(`${path}[${i}]`, item)
    } else if (isObject(v)) for (const [k, item] of Object.entries(v)) walk(path === '' ? k : `${path}.${k}`, item)
    else put(path, v, pathGroup(path))
  }

  for (const [key, v] of Object.entries(fp)) {
    if (key === 'libraries' && Array.isArray(v)) {
      v.forEach((lib, i) => {
        const role = isObject(lib) ? str(lib.role) : null
        const soname = isObject(lib) ? str(lib.soname) : null
        if (!isObject(lib) || role === null || soname === null) {
          walk(`libraries[${i}]`, lib)
          return
        }
        const real = str(lib.real_path) ?? str(lib.path) ?? ''
        const version = scalar(lib.version)
        put(`libraries.${role}:${soname}`, version === null ? real : `${real} (${String(version)})`, libraryGroup(role))
      })
    } else if (key === 'distributions' && Array.isArray(v)) {
      v.forEach((d, i) => {
        const name = isObject(d) ? str(d.name) : null
        if (!isObject(d) || name === null) walk(`distributions[${i}]`, d)
        else put(`distributions.${name}`, scalar(d.version), 'packages')
      })
    } else {
      walk(key, v)
    }
  }
  return out
}

function wordDiff(a: string, b: string): TextChange[] | undefined {
  // untrusted strings up to 4 KiB: bound the work, and skip the text diff when it is too large
  const changes = diffWords(a, b, {maxEditLength: 400})
  if (!changes) return undefined
  return changes.map((c) => {
    const t: TextChange = {value: c.value}
    if (c.added) t.added = true
    if (c.removed) t.removed = true
    return t
  })
}

/** Diffs fingerprint `b` against `a`. Values are compared, never interpreted (=== on scalars). */
export function diffFingerprints(a: Fingerprint, b: Fingerprint): FingerprintDiff {
  const fa = flattenFingerprint(a)
  const fb = flattenFingerprint(b)
  const rows: FingerprintRow[] = []
  const push = (path: string, x: Flat | undefined, y: Flat | undefined): void => {
    const group = (x ?? y)!.group
    const change = x === undefined ? 'added' : y === undefined ? 'removed' : x.value === y.value ? 'same' : 'changed'
    const row: FingerprintRow = {group, path, a: x?.value, b: y?.value, changed: change !== 'same', change}
    if (change === 'changed' && typeof x?.value === 'string' && typeof y?.value === 'string') {
      const text = wordDiff(x.value, y.value)
      if (text) row.text = text
    }
    rows.push(row)
  }
  for (const [path, x] of fa) push(path, x, fb.get(path))
  for (const [path, y] of fb) if (!fa.has(path)) push(path, undefined, y)

  const order = (r: FingerprintRow): number => (r.changed ? 0 : FINGERPRINT_GROUPS.length) + FINGERPRINT_GROUPS.indexOf(r.group)
  rows.sort((r, s) => order(r) - order(s)) // stable: fingerprint order within a group

  const byGroup = Object.fromEntries(FINGERPRINT_GROUPS.map((g) => [g, 0])) as Record<FingerprintGroup, number>
  let changed = 0
  for (const r of rows) {
    if (!r.changed) continue
    changed++
    byGroup[r.group]++
  }
  return {rows, summary: {changed, byGroup}}
}

/** Priority of a changed path for the one-line summary (lower first); undefined = not key. */
function keyPriority(path: string): number | undefined {
  if (path === 'torch.version') return 0
  if (path === 'torch.config.onednn') return 1
  if (/^libraries\.(blas|mkl|lapack):/.test(path)) return 2
  if (path === 'torch.config.blas_info' || path === 'torch.config.mkl') return 3
  if (path === 'cuda.runtime' || path === 'cuda.cudnn' || path === 'torch.cuda_build' || path === 'torch.cudnn_build') return 4
  if (/^libraries\.(cudnn|cublas):/.test(path)) return 5
  if (path === 'threads.intra_op' || path === 'threads.inter_op' || path === 'env.OMP_NUM_THREADS' || path === 'env.MKL_NUM_THREADS')
    return 6
  if (path.startsWith('flags.')) return 7
  return undefined
}

/** The most important changed rows (torch, oneDNN, BLAS, CUDA/cuDNN, threads, flags), in priority order. */
export function keyChanges(diff: FingerprintDiff, limit = 6): FingerprintRow[] {
  const key: {row: FingerprintRow; p: number}[] = []
  for (const row of diff.rows) {
    if (!row.changed) continue
    const p = keyPriority(row.path.replace(/#\d+$/, ''))
    if (p !== undefined) key.push({row, p})
  }
  key.sort((x, y) => x.p - y.p)
  return key.slice(0, limit).map((k) => k.row)
}
