// The tool's own version, read once from package.json at the package root.

import {readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

let cached: string | undefined

export function toolVersion(): string {
  if (cached === undefined) {
    // this file compiles to dist/src/app/version.js and is bundled into
    // dist/src/bundle/repro.js (scripts/bundle.mjs): both three levels below the package root
    const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'package.json')
    cached = (JSON.parse(readFileSync(pkg, 'utf8')) as {version: string}).version
  }
  return cached
}
