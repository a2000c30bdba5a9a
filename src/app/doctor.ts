// `repro doctor`: what this host offers repro (container engines, pythons with torch, NVIDIA
// GPUs, the run cache) and, for whatever is missing, how to get it.

import {existsSync, promises as fs} from 'node:fs'
import {checkStart} from '../targets/engine-check.js'
import {makeEngine, parseServerVersion, VERSION_FORMAT} from '../targets/engine.js'
import {spawnCapped} from '../targets/process.js'
import {cacheDir} from './cache.js'
import {PYTHON_CANDIDATES} from './targets.js'

export interface DoctorItem {
  area: 'engine' | 'python' | 'gpu' | 'cache'
  name: string
  ok: boolean
  detail: string
  /** how to fix it, when not ok */
  hint: string | null
}

/**
 * The engine's server, then whether it starts repro's containers and plain ones: a podman that
 * answers may still fail every start (no CAP_SYS_RESOURCE for its default rlimits; crun on a
 * hybrid cgroup host) — said here with the containers.conf lines that fix it.
 */
async function engineItems(name: 'docker' | 'podman'): Promise<DoctorItem[]> {
  const engine = makeEngine(name)
  let r: Awaited<ReturnType<typeof engine.exec>>
  try {
    r = await engine.exec(['version', '--format', VERSION_FORMAT[name]], 15_000)
  } catch {
    return [
      {area: 'engine', name, ok: false, detail: 'not installed', hint: `apt-get install ${name === 'docker' ? 'docker.io' : 'podman'}`},
    ]
  }
  if (r.exitCode !== 0)
    return [
      {
        area: 'engine',
        name,
        ok: false,
        detail: 'installed, but the daemon does not answer',
        hint:
          name === 'docker'
            ? 'start it (systemctl start docker, or dockerd), or set DOCKER_HOST'
            : 'systemctl --user start podman.socket, or set CONTAINER_HOST',
      },
    ]
  const server = parseServerVersion(r.stdout)
  const runtime = name === 'podman' ? (await engine.exec(['info', '--format', '{{.Host.OCIRuntime.Name}}'], 15_000)).stdout.trim() : ''
  const about = `server ${server?.version ?? r.stdout.trim()}${server ? ` (${server.os}/${server.architecture})` : ''}${runtime ? `, runtime ${runtime}` : ''}`
  const own = await checkStart(engine, 'repro')
  if (own === null) return [{area: 'engine', name, ok: true, detail: `${about}; no local image to test a container start with`, hint: null}]
  if (!own.ok) return [{area: 'engine', name, ok: false, detail: `${about}; cannot start repro's containers: ${own.why}`, hint: own.hint}]
  const items: DoctorItem[] = [{area: 'engine', name, ok: true, detail: `${about}; starts repro's hardened containers`, hint: null}]
  if (name === 'podman') {
    const plain = await checkStart(engine, 'plain')
    if (plain && !plain.ok)
      items.push({
        area: 'engine',
        name: 'podman defaults',
        ok: false,
        detail: `a plain podman run fails: ${plain.why}; repro passes its own --ulimit, so its audits still work, podman build does not`,
        hint: plain.hint,
      })
  }
  return items
}

async function pythonItem(candidate: string): Promise<DoctorItem> {
  const script =
    'import sys\ntry:\n    import torch\n    print(sys.executable, sys.version.split()[0], torch.__version__, torch.cuda.is_available())\nexcept ImportError:\n    print(sys.executable, sys.version.split()[0], "-", "-")'
  const r = await spawnCapped(candidate, ['-c', script], {
    env: {PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp'},
    timeoutMs: 60_000,
  }).catch(() => null)
  if (r?.exitCode !== 0) return {area: 'python', name: candidate, ok: false, detail: 'not found', hint: null}
  const [exe, version, torch, cuda] = r.stdout.trim().split(/\s+/)
  if (torch === '-')
    return {
      area: 'python',
      name: candidate,
      ok: false,
      detail: `${exe} (Python ${version}) has no torch`,
      hint: 'apt-get install python3-torch, or pip install torch in that environment',
    }
  return {
    area: 'python',
    name: candidate,
    ok: true,
    detail: `${exe}: Python ${version}, torch ${torch}${cuda === 'True' ? ', CUDA available' : ''}`,
    hint: null,
  }
}

async function gpuItem(): Promise<DoctorItem> {
  const file = '/proc/driver/nvidia/version'
  if (!existsSync(file))
    return {
      area: 'gpu',
      name: 'nvidia',
      ok: false,
      detail: 'no NVIDIA driver loaded (CPU audits only)',
      hint: 'for CUDA audits: an NVIDIA GPU with its driver, plus the NVIDIA Container Toolkit (docker) or a CDI spec (podman)',
    }
  const text = await fs.readFile(file, 'utf8').catch(() => '')
  const m = /Kernel Module\s+([0-9.]+)/.exec(text)
  return {area: 'gpu', name: 'nvidia', ok: true, detail: `driver ${m?.[1] ?? 'loaded'}`, hint: null}
}

export async function doctor(): Promise<DoctorItem[]> {
  const [docker, podman, gpu, ...pythons] = await Promise.all([
    engineItems('docker'),
    engineItems('podman'),
    gpuItem(),
    ...PYTHON_CANDIDATES.map(pythonItem),
  ])
  const seen = new Set<string>()
  const uniquePythons = pythons.filter((p) => {
    const key = p.detail.split(':')[0]!
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
  const cache: DoctorItem = {area: 'cache', name: 'run cache', ok: true, detail: cacheDir(), hint: null}
  return [...docker, ...podman, ...uniquePythons, gpu, cache]
}
