#!/usr/bin/env node
// Copies a compact selection of the GPU runs brought back (run_variants.py, unpacked) into
// fixtures/runs/gpu-<card>/ for tests and examples. Runs whose stored values did not come back
// (every repeat 2; repeat 1 of variants packed without tensors) or are dropped here to stay
// small are trimmed: an empty tensors.safetensors and no step marked stored — digests and
// outcomes stay whole. KEEP names runs VARIANT/WORKLOAD-rN whatever the layout. The copy keeps
// the layout it reads: from a repro.prepared/2 folder (`repro prepare --variants`), each kept
// run's folder as the manifest names it (status.json, spec.json, stderr.txt, inputs/config.json,
// out/ with the artifacts: a staged run `repro compare` and table.mjs read); from a
// repro.prepared/1 folder (an older repro, as fixtures/runs/gpu-h200), VARIANT/WORKLOAD-rN/.
//
//   node scripts/gpu/keep-fixtures.mjs UNPACKED_DIR h200 [FINGERPRINT_JSON]

import {copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const [src, card, fingerprint] = process.argv.slice(2)
const out = path.join(root, 'fixtures', 'runs', `gpu-${card}`)

// variant/workload-repeat → keep stored values?
export const KEEP = {
  'default/mlp-r1': true,
  'default/mlp-r2': false,
  'default/lstm-r1': true,
  'default/attention-r1': true,
  'default/cnn-r1': false,
  'default/cnn-r2': false,
  'deterministic/cnn-r1': false,
  'deterministic/cnn-r2': false,
  'benchmark/cnn-r1': false,
  'tf32-on/mlp-r1': true,
  'tf32-on/attention-r1': true,
  'tf32-off/lstm-r1': true,
  'fp16/mlp-r1': true,
  'bf16/mlp-r1': true,
  'bf16/attention-r1': true,
  'compile/mlp-r1': true,
  'compile/mlp-r2': false,
  'compile/attention-r1': false,
  'compile/attention-r2': false,
  'cpu/mlp-r1': false,
  'det-warn/attention-r1': false,
}

// an empty safetensors file: an 8-byte header length and the header "{}" padded to 8 bytes
const EMPTY = Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{}      ')])

const manifest = JSON.parse(readFileSync(path.join(src, 'manifest.json'), 'utf8'))
const prepared2 = manifest.schema === 'repro.prepared/2'
if (!prepared2 && manifest.schema !== 'repro.prepared/1') {
  console.error(`${src}: ${manifest.schema} is not a folder run_variants.py ran`)
  process.exit(2)
}
/** KEEP's VARIANT/WORKLOAD-rN → the run's folder (relative to src and out) and where its artifacts lie in it. */
const where = (key) => {
  if (!prepared2) return {folder: key, artifacts: '.'}
  const m = /^(.+)\/(.+)-r(\d+)$/.exec(key)
  const run = m && manifest.runs.find((r) => r.variant === m[1] && r.workload === m[2] && r.repeat === Number(m[3]))
  if (!run) {
    console.error(`${src}: its manifest lists no run ${key}`)
    process.exit(2)
  }
  return {folder: run.dir, artifacts: 'out'}
}

rmSync(out, {recursive: true, force: true})
for (const [key, values] of Object.entries(KEEP)) {
  const {folder, artifacts} = where(key)
  const from = path.join(src, folder, artifacts)
  const to = path.join(out, folder, artifacts)
  mkdirSync(path.join(out, folder, 'inputs'), {recursive: true})
  mkdirSync(to, {recursive: true})
  for (const f of ['run.json', 'fingerprint.json']) {
    if (existsSync(path.join(from, f))) copyFileSync(path.join(from, f), path.join(to, f))
  }
  const around = ['stderr.txt', 'inputs/config.json', ...(prepared2 ? ['status.json', 'spec.json'] : [])]
  for (const f of around) {
    if (existsSync(path.join(src, folder, f))) copyFileSync(path.join(src, folder, f), path.join(out, folder, f))
  }
  const trace = JSON.parse(readFileSync(path.join(from, 'trace.json'), 'utf8'))
  const tensors = path.join(from, 'tensors.safetensors')
  if (values && existsSync(tensors)) copyFileSync(tensors, path.join(to, 'tensors.safetensors'))
  else {
    for (const step of trace.steps) step.stored = false
    writeFileSync(path.join(to, 'tensors.safetensors'), EMPTY)
  }
  writeFileSync(path.join(to, 'trace.json'), JSON.stringify(trace))
}
if (fingerprint) copyFileSync(fingerprint, path.join(out, 'fingerprint-cuda.json'))
for (const f of ['manifest.json', 'results.json']) if (existsSync(path.join(src, f))) copyFileSync(path.join(src, f), path.join(out, f))
console.log(`kept ${Object.keys(KEEP).length} runs in ${path.relative(root, out)}`)
