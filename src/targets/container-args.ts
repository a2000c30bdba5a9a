// The exact `docker create` / `podman create` arguments for a probe container: hardened by
// default, no bind mounts (so remote engines work unchanged), a size-bounded work area any user
// can write, explicit rlimits, GPUs per engine, and the probe started through the image's own
// entrypoint or instead of it. Pure.

import {WORK_AREA} from './image-launch.js'

export type EngineName = 'docker' | 'podman'

export interface ContainerLimits {
  memory: string
  cpus: string
  pidsLimit: number
  tmpfsSize: string
  /** size of the work area (the tmpfs-backed /repro volume): inputs, probe and artifacts */
  workArea: string
  /** [soft, hard] open files; at or under the engine's own hard limit */
  nofile: [number, number]
  /** [soft, hard] processes of the container's user */
  nproc: [number, number]
}

export const DEFAULT_LIMITS: ContainerLimits = {
  memory: '4g',
  cpus: '2',
  pidsLimit: 1024,
  tmpfsSize: '1g',
  workArea: '1g',
  nofile: [1024, 1024],
  nproc: [4096, 4096],
}

/**
 * rlimits at or under the hard limits of the process that starts containers, from
 * /proc/self/limits, and never above the defaults: raising a hard limit needs CAP_SYS_RESOURCE,
 * which some hosts do not give even to root, and the runtime's own limits can be lower than
 * ours (podman's conmon runs with 32768 processes on this VM). Processes count per UID across
 * the host for rootful engines, so nproc leaves room for a busy host user with the same UID.
 */
export function rlimitsFromProc(text: string | null): Pick<ContainerLimits, 'nofile' | 'nproc'> {
  const hard = (label: string, ceiling: number): number => {
    const m = new RegExp(`^${label}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text ?? '')
    if (!m || m[2] === 'unlimited') return ceiling
    return Math.min(Number(m[2]) || ceiling, ceiling)
  }
  const files = hard('Max open files', DEFAULT_LIMITS.nofile[1])
  const procs = hard('Max processes', DEFAULT_LIMITS.nproc[1])
  return {nofile: [files, files], nproc: [procs, procs]}
}

/** How the probe starts: through the image's entrypoint (kept) or instead of it. */
export interface LaunchSpec {
  keepEntrypoint: boolean
  /** interpreter name or path, resolved by the container's PATH (or the entrypoint's) */
  interpreter: string
  /** the launcher's source (probe/container_boot.py), run with `-c` */
  boot: string
  /** seconds the launcher waits for its inputs, and lingers after the probe, at most */
  lingerSeconds: number
}

export interface CreateSpec {
  engine: EngineName
  image: string
  /** the probe's mode for a one-run container; `serve`: a supervisor taking many runs one by one (container_boot.py) */
  mode: 'fingerprint' | 'train' | 'script' | 'replay' | 'serve'
  gpus: boolean
  limits: ContainerLimits
  /** only what repro adds to the image's environment (image-launch.probeEnvironment) */
  env: Record<string, string>
  labels: Record<string, string>
  launch: LaunchSpec
}

/**
 * The work area: a local volume backed by a size-limited tmpfs. Any UID can write it (mode
 * 1777), writes stop at the cap, nothing reaches the engine's disk, `cp` reaches it while the
 * container runs, and `rm -v` removes it. Docker can label it (podman cannot yet).
 */
/**
 * Remove containers (and their work-area volumes) at once. podman's `rm -f` first sends the
 * stop signal and waits its 10 s stop timeout — the probe's launcher, PID 1, ignores SIGTERM
 * while it lingers for the copy-out, so every podman run paid 10 s there (measured: a one-run
 * audit 15.5 s on podman against 5.7 s on docker); `-t 0` kills at once, as docker's `rm -f` does.
 */
export function removeArgs(engine: EngineName, ids: string[]): string[] {
  return ['rm', '-f', '-v', ...(engine === 'podman' ? ['-t', '0'] : []), ...ids]
}

export function workAreaMount(engine: EngineName, size: string, labels: Record<string, string>): string {
  const volumeLabels = engine === 'docker' ? Object.entries(labels).map(([k, v]) => `volume-label=${k}=${v},`) : []
  return [
    `type=volume,destination=${WORK_AREA},`,
    ...volumeLabels.sort(),
    'volume-opt=type=tmpfs,volume-opt=device=tmpfs,',
    // one CSV field with commas inside: quoted, as `--mount` parses it
    `"volume-opt=o=size=${size},mode=1777,nosuid,nodev"`,
  ].join('')
}

/** The interpreter's arguments: the launcher (container_boot.py) with the probe's own argv after it; the same for a container and a Pod. */
export function launcherArgs(launch: LaunchSpec, mode: CreateSpec['mode']): string[] {
  // the supervisor is stdlib only: -S keeps an image's sitecustomize out of it (each run's python has its site)
  // after each run it empties the work area and /tmp (the container's own tmpfs)
  if (mode === 'serve') return ['-S', '-c', launch.boot, WORK_AREA, String(launch.lingerSeconds), 'serve', '/tmp']
  return [
    '-c',
    launch.boot,
    WORK_AREA,
    String(launch.lingerSeconds),
    mode,
    '--config',
    `${WORK_AREA}/in/config.json`,
    '--out',
    `${WORK_AREA}/out`,
  ]
}

export function createArgs(spec: CreateSpec): string[] {
  const {options, image, command} = createParts(spec)
  return [...options, image, ...command]
}

/**
 * createArgs in its three parts: `create` and its options, the image, and the command the
 * container runs. A Slurm node's runner (probe/node_runner.py) adjusts only the options to its
 * allocation (GPUs, memory, CPUs) and names the container.
 */
export function createParts(spec: CreateSpec): {options: string[]; image: string; command: string[]} {
  const {limits} = spec
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
    `/tmp:rw,nosuid,nodev,size=${limits.tmpfsSize}`,
    '--mount',
    workAreaMount(spec.engine, limits.workArea, spec.labels),
    '--pids-limit',
    String(limits.pidsLimit),
    '--memory',
    limits.memory,
    '--memory-swap',
    limits.memory,
    '--cpus',
    limits.cpus,
    '--ulimit',
    `nofile=${limits.nofile[0]}:${limits.nofile[1]}`,
    '--ulimit',
    `nproc=${limits.nproc[0]}:${limits.nproc[1]}`,
  ]
  if (spec.gpus) {
    // docker's NVIDIA runtime hook vs podman's Container Device Interface.
    if (spec.engine === 'docker') args.push('--gpus', 'all')
    else args.push('--device', 'nvidia.com/gpu=all')
  }
  for (const [k, v] of Object.entries(spec.labels).sort()) args.push('--label', `${k}=${v}`)
  for (const [k, v] of Object.entries(spec.env).sort()) args.push('--env', `${k}=${v}`)
  const {launch} = spec
  const probe = launcherArgs(launch, spec.mode)
  // The image's user, working directory and environment stay as built. A kept entrypoint runs
  // the interpreter as its command (after activating whatever it activates); a skipped one is
  // replaced by the interpreter.
  if (launch.keepEntrypoint) return {options: args, image: spec.image, command: [launch.interpreter, ...probe]}
  return {options: [...args, '--entrypoint', launch.interpreter], image: spec.image, command: probe}
}
