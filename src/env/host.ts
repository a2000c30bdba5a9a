// The host's own fingerprint (where repro ran, not where the probe ran), via systeminformation.
// Each query is time-boxed: a slow probe of the hardware must never stall an audit.
//
// Measuring it spawns a dozen helpers (lscpu three times, lspci, nvidia-smi, …): ~0.2 s. With
// a memo folder (the run cache's, so --no-cache measures afresh) a complete measurement is kept
// per boot, keyed on everything it is read from that is cheap to read again: the boot ID, all
// of /proc/cpuinfo but the clock speed (model, flags, microcode, every online CPU), the kernel
// release and build, architecture, total memory, the OS release files, the NVIDIA driver and
// its GPUs, the DRM devices and the systeminformation version. Another machine, a reboot, other
// CPU flags (a VM moved to another host type), a kernel or OS upgrade, a driver reload or a
// container with another OS read a different key, so they measure again.

import {createHash, randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {createRequire} from 'node:module'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {recordSpan} from './timings.js'

export interface HostFingerprint {
  cpu: {brand: string; cores: number; physical_cores: number; flags: string}
  os: {platform: string; distro: string; release: string; kernel: string; arch: string}
  memory_bytes: number
  gpus: {vendor: string; model: string; driver: string | null; vram_mb: number | null}[]
  node: string
}

/** A measurement, and whether every query answered (only a complete one is kept). */
export interface HostMeasurement {
  fingerprint: HostFingerprint
  complete: boolean
}

export interface HostFingerprintOptions {
  timeoutMs?: number
  /** keep complete measurements here, keyed by hostMemoKey; without it every call measures */
  memoDir?: string
  /** where /proc, /sys and /etc are read for the key (tests; default /) */
  root?: string
  /** the measurement (tests; default systeminformation) */
  measure?: (timeoutMs: number) => Promise<HostMeasurement>
}

/** Bump when the fingerprint's fields or how they are measured change: old memos are not read. */
const MEMO_FORMAT = 1
/** Memos kept at most (one per boot and OS image); older ones are removed on a write. */
const MEMO_KEEP = 32

async function within<T>(ms: number, p: Promise<T>, fallback: T, missed: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => {
      missed()
      resolve(fallback)
    }, ms)
  })
  try {
    return await Promise.race([
      p.catch(() => {
        missed()
        return fallback
      }),
      timeout,
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** The fingerprint measured with systeminformation (loaded only here: it is slow to import). */
export async function measureHost(timeoutMs = 4000): Promise<HostMeasurement> {
  // require, not import(): a CommonJS package import()ed while others load (simple-git beside
  // it, git state and host fingerprint are read together) can come back as an empty namespace
  // under node 20 when node_modules is reached through a symlink (pnpm, worktrees): si.cpu
  // was undefined. require() of the same package always returns its finished exports.
  const si = createRequire(import.meta.url)('systeminformation') as typeof import('systeminformation')
  let complete = true
  const missed = () => {
    complete = false
  }
  const [cpu, flags, osInfo, mem, graphics] = await Promise.all([
    within(timeoutMs, si.cpu(), null, missed),
    within(timeoutMs, si.cpuFlags(), '', missed),
    within(timeoutMs, si.osInfo(), null, missed),
    within(timeoutMs, si.mem(), null, missed),
    within(timeoutMs, si.graphics(), null, missed),
  ])
  const fingerprint: HostFingerprint = {
    cpu: {
      brand: cpu ? `${cpu.manufacturer} ${cpu.brand}`.trim() : 'unknown',
      cores: cpu?.cores ?? 0,
      physical_cores: cpu?.physicalCores ?? 0,
      flags: flags.slice(0, 4096),
    },
    os: {
      platform: osInfo?.platform ?? process.platform,
      distro: osInfo?.distro ?? 'unknown',
      release: osInfo?.release ?? 'unknown',
      kernel: osInfo?.kernel ?? 'unknown',
      arch: osInfo?.arch ?? process.arch,
    },
    memory_bytes: mem?.total ?? 0,
    gpus: (graphics?.controllers ?? [])
      .filter((g) => /nvidia|amd|intel/i.test(g.vendor ?? ''))
      .map((g) => ({vendor: g.vendor ?? '', model: g.model ?? '', driver: g.driverVersion ?? null, vram_mb: g.vram ?? null})),
    node: process.version,
  }
  return {fingerprint, complete: complete && cpu !== null && osInfo !== null && mem !== null && graphics !== null}
}

const read = (file: string) => fs.readFile(file, 'utf8').catch(() => null)
const list = (dir: string) =>
  fs.readdir(dir).then(
    (names) => names.sort(),
    () => null,
  )

let siVersion: Promise<string | null> | null = null
/** systeminformation's version, from its package.json (a new version may measure differently). */
function systeminformationVersion(): Promise<string | null> {
  siVersion ??= (async () => {
    try {
      const main = fileURLToPath(import.meta.resolve('systeminformation'))
      const pkg = JSON.parse((await read(path.join(path.dirname(main), '..', 'package.json'))) ?? '{}') as {version?: string}
      return pkg.version ?? null
    } catch {
      return null
    }
  })()
  return siVersion
}

/**
 * The memo key: sha256 over what the fingerprint is measured from, read in ~1 ms. null (never
 * memoized) where there is no boot ID or no /proc/cpuinfo to read (not Linux).
 */
export async function hostMemoKey(root = '/'): Promise<string | null> {
  const at = (...p: string[]) => path.join(root, ...p)
  const [bootId, cpuinfo, etc, nvidiaVersion, nvidiaGpus, drm, si] = await Promise.all([
    read(at('proc', 'sys', 'kernel', 'random', 'boot_id')),
    read(at('proc', 'cpuinfo')),
    list(at('etc')),
    read(at('proc', 'driver', 'nvidia', 'version')),
    list(at('proc', 'driver', 'nvidia', 'gpus')),
    list(at('sys', 'class', 'drm')),
    systeminformationVersion(),
  ])
  if (!bootId?.trim() || !cpuinfo) return null
  const releaseFiles = (etc ?? []).filter((n) => n.endsWith('-release') || n.endsWith('_release') || n === 'issue')
  const releases = await Promise.all(releaseFiles.map(async (n) => [n, await read(at('etc', n))]))
  const gpuInfo = await Promise.all(
    (nvidiaGpus ?? []).map(async (g) => [g, await read(at('proc', 'driver', 'nvidia', 'gpus', g, 'information'))]),
  )
  const parts = {
    format: MEMO_FORMAT,
    boot_id: bootId.trim(),
    // the clock speed changes from one read to the next; everything else in it is fixed for a boot
    cpuinfo: cpuinfo
      .split('\n')
      .filter((l) => !/^cpu MHz\s*:/i.test(l))
      .join('\n'),
    kernel: [os.platform(), os.release(), os.version(), os.arch(), os.machine()],
    memory: os.totalmem(),
    releases,
    usr_lib_os_release: await read(at('usr', 'lib', 'os-release')),
    nvidia: {version: nvidiaVersion, gpus: gpuInfo},
    drm,
    systeminformation: si,
  }
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex')
}

function isFingerprint(v: unknown): v is HostFingerprint {
  const f = v as HostFingerprint
  return (
    typeof f === 'object' &&
    f !== null &&
    typeof f.cpu?.brand === 'string' &&
    typeof f.cpu.flags === 'string' &&
    typeof f.cpu.cores === 'number' &&
    typeof f.cpu.physical_cores === 'number' &&
    typeof f.os?.kernel === 'string' &&
    typeof f.os.arch === 'string' &&
    typeof f.os.platform === 'string' &&
    typeof f.os.distro === 'string' &&
    typeof f.os.release === 'string' &&
    typeof f.memory_bytes === 'number' &&
    Array.isArray(f.gpus)
  )
}

async function readMemo(file: string): Promise<HostFingerprint | null> {
  const text = await read(file)
  if (text === null) return null
  try {
    const v = JSON.parse(text) as unknown
    return isFingerprint(v) ? v : null
  } catch {
    return null
  }
}

/** Write beside, then rename (a concurrent reader never sees half a file); keep the newest MEMO_KEEP. */
async function writeMemo(dir: string, file: string, fp: HostFingerprint): Promise<void> {
  await fs.mkdir(dir, {recursive: true})
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`
  try {
    await fs.writeFile(tmp, JSON.stringify(fp))
    await fs.rename(tmp, file)
  } finally {
    await fs.rm(tmp, {force: true})
  }
  const names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json'))
  if (names.length <= MEMO_KEEP) return
  const dated = await Promise.all(names.map(async (n) => ({n, t: (await fs.stat(path.join(dir, n)).catch(() => null))?.mtimeMs ?? 0})))
  for (const {n} of dated.sort((a, b) => b.t - a.t).slice(MEMO_KEEP)) await fs.rm(path.join(dir, n), {force: true})
}

export async function hostFingerprint(opts: HostFingerprintOptions = {}): Promise<HostFingerprint> {
  const start = performance.now()
  const timeoutMs = opts.timeoutMs ?? 4000
  const measure = opts.measure ?? measureHost
  const key = opts.memoDir ? await hostMemoKey(opts.root).catch(() => null) : null
  const file = opts.memoDir && key ? path.join(opts.memoDir, `${key}.json`) : null
  if (file) {
    const memo = await readMemo(file)
    if (memo) {
      recordSpan('host fingerprint', 'from the memo', start)
      // the node that runs now, not the one that measured
      return {...memo, node: process.version}
    }
  }
  const {fingerprint, complete} = await measure(timeoutMs)
  if (file && complete) await writeMemo(opts.memoDir!, file, fingerprint).catch(() => undefined)
  recordSpan('host fingerprint', 'measured', start)
  return fingerprint
}
