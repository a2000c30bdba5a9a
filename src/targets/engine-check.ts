// Can this engine start containers, both repro's (hardened, explicit rlimits, tmpfs work area)
// and plain ones (the engine's defaults)? For `repro doctor`: a container is created from any
// local image with an entrypoint that does not exist, and started. Reaching "no such file" means
// the runtime got as far as exec; anything earlier is the reason it cannot start containers.

import {createArgs, DEFAULT_LIMITS, removeArgs} from './container-args.js'
import {containerLabels, type Engine} from './engine.js'
import {lastLine} from './target.js'

export interface StartCheck {
  ok: boolean
  /** why not, in words, and what to change */
  why: string | null
  hint: string | null
}

/** The containers.conf lines that let podman start containers on hosts without CAP_SYS_RESOURCE. */
export const PODMAN_CONF_FIX =
  'add to /etc/containers/containers.conf (or a file in /etc/containers/containers.conf.d/): [containers] default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"] and [engine] runtime = "runc" (bash scripts/podman-setup.sh writes it)'

const NEVER_EXISTS = '/nonexistent/repro-doctor'

/** Why a start failed, from the engine's error; null when it reached exec (the runtime works). */
export function explainStartFailure(engine: Engine['name'], stderr: string): StartCheck {
  if (/executable file not found|no such file or directory|not found in \$PATH/i.test(stderr) && stderr.includes(NEVER_EXISTS))
    return {ok: true, why: null, hint: null}
  const last = lastLine(stderr) || 'no error text'
  const rlimit = /error setting rlimit[^:]*: operation not permitted/i.exec(stderr)
  if (rlimit || /rlimit/i.test(stderr))
    return {
      ok: false,
      why: `${rlimit ? rlimit[0] : last} (the engine may not raise rlimits here: the host gives no CAP_SYS_RESOURCE)`,
      hint: engine === 'podman' ? PODMAN_CONF_FIX : 'set default-ulimits at or under the hard limits in /etc/docker/daemon.json',
    }
  if (/crun/i.test(stderr) && /cgroup/i.test(stderr))
    return {ok: false, why: `${last} (crun on a hybrid cgroup host)`, hint: engine === 'podman' ? PODMAN_CONF_FIX : 'use the runc runtime'}
  return {ok: false, why: last, hint: `check \`${engine} info\` and try \`${engine} run --rm IMAGE true\``}
}

/** Start a container that cannot run anything, from the first local image; null when there is none. */
export async function checkStart(engine: Engine, style: 'repro' | 'plain'): Promise<StartCheck | null> {
  const images = await engine.exec(['images', '-q'], 30_000)
  const image = images.stdout.split('\n').find((l) => l.trim())
  if (images.exitCode !== 0 || !image) return null
  const labels = containerLabels()
  const args =
    style === 'repro'
      ? createArgs({
          engine: engine.name,
          image: image.trim(),
          mode: 'fingerprint',
          gpus: false,
          limits: {...DEFAULT_LIMITS, workArea: '64m'},
          env: {},
          labels,
          launch: {keepEntrypoint: false, interpreter: NEVER_EXISTS, boot: '', lingerSeconds: 1},
        })
      : [
          'create',
          '--network',
          'none',
          ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
          '--entrypoint',
          NEVER_EXISTS,
          image.trim(),
        ]
  const created = await engine.exec(args, 60_000)
  if (created.exitCode !== 0) return explainStartFailure(engine.name, created.stderrTail)
  const id = created.stdout.trim().split('\n').pop()!.trim()
  try {
    const started = await engine.exec(['start', id], 60_000)
    if (started.exitCode === 0) return {ok: true, why: null, hint: null}
    return explainStartFailure(engine.name, started.stderrTail)
  } finally {
    await engine.exec(removeArgs(engine.name, [id]), 60_000).catch(() => undefined)
  }
}
