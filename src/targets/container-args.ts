// The exact `docker create` / `podman create` arguments for a probe container: hardened by
// default, no bind mounts (so remote engines work unchanged), GPUs per engine. Pure.

export type EngineName = 'docker' | 'podman'

export interface ContainerLimits {
  memory: string
  cpus: string
  pidsLimit: number
  tmpfsSize: string
}

export const DEFAULT_LIMITS: ContainerLimits = {memory: '4g', cpus: '2', pidsLimit: 1024, tmpfsSize: '1g'}

/** Where the probe, its inputs and outputs live inside the container (an anonymous volume). */
export const CONTAINER_ROOT = '/repro'

export interface CreateSpec {
  engine: EngineName
  image: string
  mode: 'fingerprint' | 'train'
  gpus: boolean
  limits: ContainerLimits
  env: Record<string, string>
  labels: Record<string, string>
  python: string
}

export function createArgs(spec: CreateSpec): string[] {
  const args = [
    'create',
    '--network',
    'none',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    '--read-only',
    '--tmpfs',
    `/tmp:rw,nosuid,nodev,size=${spec.limits.tmpfsSize}`,
    '--mount',
    `type=volume,destination=${CONTAINER_ROOT}`,
    '--pids-limit',
    String(spec.limits.pidsLimit),
    '--memory',
    spec.limits.memory,
    '--memory-swap',
    spec.limits.memory,
    '--cpus',
    spec.limits.cpus,
    '--workdir',
    '/tmp',
  ]
  if (spec.gpus) {
    // docker's NVIDIA runtime hook vs podman's Container Device Interface.
    if (spec.engine === 'docker') args.push('--gpus', 'all')
    else args.push('--device', 'nvidia.com/gpu=all')
  }
  for (const [k, v] of Object.entries(spec.labels).sort()) args.push('--label', `${k}=${v}`)
  const env: Record<string, string> = {
    HOME: '/tmp',
    LANG: 'C.UTF-8',
    PYTHONPATH: `${CONTAINER_ROOT}/probe`,
    PYTHONDONTWRITEBYTECODE: '1',
    PYTHONHASHSEED: '0',
    ...spec.env,
  }
  for (const [k, v] of Object.entries(env).sort()) args.push('--env', `${k}=${v}`)
  args.push(
    '--entrypoint',
    spec.python,
    spec.image,
    '-m',
    'repro_probe',
    spec.mode,
    '--config',
    `${CONTAINER_ROOT}/in/config.json`,
    '--out',
    `${CONTAINER_ROOT}/out`,
  )
  return args
}
