// torch.compile end to end in a hardened container: repro-fixture:compile (Debian's torch 2.6 with
// the C++ toolchain inductor needs) eager vs compiled, and repro-fixture:trixie (no compiler)
// asked to compile. The observer check and the compiled trace's entries are probe tests
// (probe/tests/test_compiled_docker.py).
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {repro, tmpDir} from './helpers.js'
import {needs} from './prereqs.js'

const FAST = ['--epochs', '1', '--rows', '512']
const COMPILE_IMAGE = 'repro-fixture:compile'
const haveImage = () => spawnSync('docker', ['image', 'inspect', COMPILE_IMAGE], {stdio: 'ignore'}).status === 0

interface Report {
  verdict: {exit_code: number; headline: string}
  targets: {status: string; error?: {line: string}; runs: {knobs_effective: Record<string, unknown>}[]}[]
  comparisons: {
    role: string
    divergence: {first_divergence: {entry: string; phase: string} | null}
    fingerprint_changes: {path: string}[]
  }[]
  attribution: {experiments: {knobs: {name: string}[]; outcome: string}[]; suspects: {kind: string; name: string; confidence: string}[]}
}

describe('torch.compile in a hardened container (real engine)', {skip: needs('docker', 'fixture-images')}, () => {
  test('the compile fixture eager vs compiled: exit 1, compile the top suspect (high), its rerun removes the drift', {
    skip: !process.env['CI'] && !haveImage() && `skipped: ${COMPILE_IMAGE} is missing (bash fixtures/images/build.sh builds it)`,
  }, () => {
    const r = repro(
      [
        'audit',
        '--image',
        COMPILE_IMAGE,
        '--image',
        COMPILE_IMAGE,
        '--set',
        '2:compile=true',
        '--repeats',
        '1',
        '--json',
        '--out',
        tmpDir(),
        ...FAST,
      ],
      {timeoutMs: 900_000},
    )
    assert.equal(r.status, 1, r.stdout + r.stderr)
    const report = JSON.parse(r.stdout) as Report
    assert.equal(report.targets[1]!.runs[0]!.knobs_effective['compile'], true)
    const cross = report.comparisons.find((c) => c.role === 'cross')!
    assert.ok(
      cross.fingerprint_changes.some((c) => c.path === 'knobs.compile'),
      'the knob is in the fingerprint difference',
    )
    // a compiled run records no per-layer forward: the first divergence is at a boundary the
    // compiled graph keeps (its output, or the gradients)
    assert.match(cross.divergence.first_divergence!.entry, /^(out|loss|grad\/|param\/|replay\/)/)
    const top = report.attribution.suspects[0]!
    assert.deepEqual([top.kind, top.name, top.confidence], ['knob', 'compile', 'high'])
    const e = report.attribution.experiments.find((x) => x.knobs.length === 1 && x.knobs[0]!.name === 'compile')!
    assert.equal(e.outcome, 'disappears')
  })

  test('an image without a C++ compiler: one line naming the packages, exit 2', () => {
    const r = repro([
      'audit',
      '--image',
      'repro-fixture:trixie',
      '--set',
      'compile=true',
      '--repeats',
      '1',
      '--json',
      '--out',
      tmpDir(),
      ...FAST,
    ])
    assert.equal(r.status, 2, r.stdout + r.stderr)
    const line = (JSON.parse(r.stdout) as Report).targets[0]!.error!.line
    assert.match(
      line,
      /^#1 docker:repro-fixture:trixie \[compile=true\]: torch\.compile cannot build kernels in this target \(torch 2\.6\S*\): no working C\+\+ compiler .* — build the image with a C\+\+ toolchain for inductor \(Debian: apt-get install g\+\+ python3-dev python3-setuptools libtorch-dev\)/,
    )
  })
})
