// The host's own fingerprint (where repro ran, not where the probe ran), via systeminformation.
// Each query is time-boxed: a slow probe of the hardware must never stall an audit.

import si from 'systeminformation'

export interface HostFingerprint {
  cpu: {brand: string; cores: number; physical_cores: number; flags: string}
  os: {platform: string; distro: string; release: string; kernel: string; arch: string}
  memory_bytes: number
  gpus: {vendor: string; model: string; driver: string | null; vram_mb: number | null}[]
  node: string
}

async function within<T>(ms: number, p: Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms)
  })
  try {
    return await Promise.race([p.catch(() => fallback), timeout])
  } finally {
    clearTimeout(timer)
  }
}

export async function hostFingerprint(timeoutMs = 4000): Promise<HostFingerprint> {
  const [cpu, flags, osInfo, mem, graphics] = await Promise.all([
    within(timeoutMs, si.cpu(), null),
    within(timeoutMs, si.cpuFlags(), ''),
    within(timeoutMs, si.osInfo(), null),
    within(timeoutMs, si.mem(), null),
    within(timeoutMs, si.graphics(), null),
  ])
  return {
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
}
