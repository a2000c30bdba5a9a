// The local docker daemon's HTTP API on its unix socket, for the two questions every image
// audit asks before it knows whether it will run anything: the server's version and each
// image's identity. Each CLI call starts a Go process (~20-40 ms and as much CPU); the same
// request on the socket takes ~2-10 ms. Used only where the CLI would talk to that same socket
// (DOCKER_HOST unset or unix://, no other context chosen, the CLI installed); remote engines,
// contexts, podman, a refused connection or any unexpected answer go through the CLI as before.
// REPRO_DOCKER_API=0 always uses the CLI.

import {accessSync, readFileSync, statSync, constants as fsc} from 'node:fs'
import type {IncomingMessage} from 'node:http'
import os from 'node:os'
import path from 'node:path'

const BODY_CAP = 8 * 1024 * 1024

export interface DockerApiAnswer {
  status: number
  body: string
}

/** The socket the docker CLI would use, when it is a local unix socket; else null. */
export function localDockerSocket(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env['REPRO_DOCKER_API'] === '0') return null
  const host = env['DOCKER_HOST']
  let socket = '/var/run/docker.sock'
  if (host) {
    if (!host.startsWith('unix://')) return null
    socket = host.slice('unix://'.length)
    if (!socket.startsWith('/')) return null
  }
  const context = env['DOCKER_CONTEXT']
  if (context && context !== 'default') return null
  // the CLI's config may choose a context (docker context use): then the CLI decides
  const configDir = env['DOCKER_CONFIG'] || path.join(env['HOME'] || os.homedir(), '.docker')
  let config: string | null = null
  try {
    config = readFileSync(path.join(configDir, 'config.json'), 'utf8')
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return null
  }
  if (config !== null && !host && !context) {
    try {
      const current = (JSON.parse(config) as {currentContext?: unknown}).currentContext
      if (current !== undefined && current !== '' && current !== 'default') return null
    } catch {
      return null
    }
  }
  if (!cliInstalled(env['PATH'])) return null
  try {
    return statSync(socket).isSocket() ? socket : null
  } catch {
    return null
  }
}

/** The docker CLI is on PATH (auto detection picks docker only where it is installed). */
function cliInstalled(pathEnv: string | undefined): boolean {
  for (const dir of (pathEnv ?? '').split(':')) {
    if (!dir) continue
    try {
      accessSync(path.join(dir, 'docker'), fsc.X_OK)
      return true
    } catch {
      // next
    }
  }
  return false
}

/** GET `urlPath` on the daemon's socket: status and body, or null (no connection, timeout, too large). */
export async function dockerApiGet(socket: string, urlPath: string, timeoutMs: number): Promise<DockerApiAnswer | null> {
  const http = await import('node:http')
  return new Promise((resolve) => {
    let done = false
    const finish = (v: DockerApiAnswer | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(v)
    }
    const req = http.request({socketPath: socket, path: urlPath, method: 'GET', headers: {Host: 'docker'}}, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size > BODY_CAP) {
          req.destroy()
          finish(null)
        } else chunks.push(c)
      })
      res.on('end', () => finish({status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8')}))
      res.on('error', () => finish(null))
    })
    const timer = setTimeout(() => {
      req.destroy()
      finish(null)
    }, timeoutMs)
    req.on('error', () => finish(null))
    req.end()
  })
}

/** An image reference as a path segment: only the characters references use, else null (the CLI decides). */
export function imagePath(image: string): string | null {
  return /^[A-Za-z0-9][A-Za-z0-9._\-/:@]*$/.test(image) ? `/images/${image}/json` : null
}
