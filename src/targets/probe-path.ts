// Where the Python probe ships: `probe/` at the package root, next to `dist/`.

import path from 'node:path'
import {fileURLToPath} from 'node:url'

/** The directory that holds the `repro_probe` package (goes on PYTHONPATH). */
export function probeRoot(): string {
  // this file compiles to dist/src/targets/probe-path.js and is bundled into
  // dist/src/bundle/repro.js (scripts/bundle.mjs): both three levels below the package root
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'probe')
}

/**
 * PYTHONPATH for a probe run (pure): the probe's directory after the knobs' own PYTHONPATH
 * (`--set env.PYTHONPATH=…`), never instead of it, and never the other way round.
 */
export function probePythonPath(knobs: Record<string, string>, probe: string): string {
  const own = knobs['PYTHONPATH']
  return own ? `${own}:${probe}` : probe
}
