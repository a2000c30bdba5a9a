#!/usr/bin/env node
// Bundles what `repro` loads at start into one file, dist/src/bundle/repro.js (npm run build,
// after tsc): @oclif/core, every command in dist/src/commands and all they import (zod, diff, …).
// Node's ESM loader resolves, reads and links ~370 modules one by one otherwise; a warm
// `repro check` spent ~300 ms of its ~530 ms there (bench 5b), the bundle ~110 ms of CPU.
//
// bin/run.js takes oclif's `execute` from the bundle, and package.json's oclif.commands points
// oclif at the bundle's COMMANDS (its "explicit" strategy), so the commands extend the same
// Command class. The compare's worker thread is a second bundle beside it
// (compare-thread-worker.js, the name compare-thread.ts starts). Both sit three levels below the
// package root, as tsc's dist/src/targets/probe-path.js and dist/src/app/version.js do: those two
// find the package root that way, bundled or not.
//
// Not bundled, loaded from node_modules when used: packages the code requires at run time
// (systeminformation, simple-git) and the report's charts (vega, vega-lite), and
// TypeScript (oclif's ts-node support, never used by a built repro).
import {readdirSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {build} from 'esbuild'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const DIST = path.join(ROOT, 'dist', 'src')
const OUT = path.join(DIST, 'bundle')

// oclif's own discovery rule: a command is a module in the commands directory, named by its file
const commands = readdirSync(path.join(DIST, 'commands'))
  .filter((f) => f.endsWith('.js'))
  .map((f) => f.slice(0, -3))
  .sort()
const ident = (id) => `command_${id.replace(/\W/g, '_')}`
const entry = [
  "export {execute} from '@oclif/core'",
  ...commands.map((id) => `import ${ident(id)} from './commands/${id}.js'`),
  `export const COMMANDS = {${commands.map((id) => `${JSON.stringify(id)}: ${ident(id)}`).join(', ')}}`,
].join('\n')

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  mainFields: ['module', 'main'],
  external: ['typescript', 'vega', 'vega-lite', 'systeminformation', 'simple-git'],
  // CommonJS packages in an ES module bundle still call require (node's built-ins, JSON)
  banner: {js: "import {createRequire as __reproCreateRequire} from 'node:module'\nconst require = __reproCreateRequire(import.meta.url)"},
  legalComments: 'none',
  logLevel: 'warning',
}

await Promise.all([
  build({
    ...common,
    stdin: {contents: entry, resolveDir: DIST, sourcefile: 'repro-entry.js', loader: 'js'},
    outfile: path.join(OUT, 'repro.js'),
  }),
  build({
    ...common,
    entryPoints: [path.join(DIST, 'app', 'compare-thread-worker.js')],
    outfile: path.join(OUT, 'compare-thread-worker.js'),
  }),
])
console.log(`dist/src/bundle/repro.js: ${commands.length} commands`)
