// The user's own training script, end to end with the real probe: examples/ml-repo's train.py
// (its own package, data file and a two-worker DataLoader) on the host python and on the
// Debian fixture images, a script with a hidden source of nondeterminism, and the failure modes
// as one line each.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import {PYTHON, ROOT, repro, tmpDir, unwrap} from './helpers.js'
import {needs} from './prereqs.js'

const EXAMPLE = path.join(ROOT, 'examples', 'ml-repo')
const SCRIPTS = path.join(ROOT, 'probe', 'tests', 'scripts')
const EXAMPLE_ARGS = [
  '--script',
  'train.py',
  '--script-args',
  '--epochs 2',
  '--include',
  'fraudnet',
  '--include',
  'data',
  '--max-steps',
  '20',
]

interface Run {
  cached?: boolean
  script?: {
    argv: string[]
    cwd: string
    steps_recorded: number
    truncated: boolean
    seeded: unknown
    observer_check?: {equal: boolean} | null
  }
}
interface Report {
  verdict: {status: string; exit_code: number; headline: string}
  targets: {name: string; status: string; error?: {line: string}; runs: Run[]}[]
  comparisons: {role: string; divergence: {bitwise_identical: boolean; first_divergence: {step: number; entry: string} | null}}[]
  attribution?: {experiments: {knobs: {name: string}[]; outcome: string; note: string}[]; suspects: {name: string; confidence: string}[]}
}

describe("the user's training script (real probe)", {skip: needs('torch')}, () => {
  test('the example repo on the host python against itself: reproducible, observer check equal, truncated on purpose', () => {
    const r = repro(['audit', ...EXAMPLE_ARGS, '--repeats', '2', '--check-observer', '--json', '--out', tmpDir()], {cwd: EXAMPLE})
    assert.equal(r.status, 0, r.stdout + r.stderr)
    const report = JSON.parse(r.stdout) as Report
    const runs = report.targets[0]!.runs
    for (const run of runs) {
      assert.equal(run.script!.steps_recorded, 20)
      assert.equal(run.script!.truncated, true)
      assert.equal(run.script!.observer_check!.equal, true, 'traced and untraced runs end with bitwise-equal parameters')
      assert.deepEqual(run.script!.argv.slice(1), ['--epochs', '2'])
    }
    const repeat = report.comparisons.find((c) => c.role === 'repeat')!
    assert.equal(repeat.divergence.bitwise_identical, true)
    // the default variant runs another thread count: its drift is named in the user's module
    // paths, and the counterfactual rerun (which must carry the script, not a data file) removes it
    const variant = report.comparisons.find((c) => c.role === 'variant')
    if (variant && !variant.divergence.bitwise_identical) {
      assert.match(variant.divergence.first_divergence!.entry, /encoder\.\d/)
      const e = report.attribution!.experiments.find((x) => x.knobs[0]!.name === 'threads')!
      assert.equal(e.outcome, 'disappears', e.note)
    }
  })

  test('two thread counts: the drift starts at a LayerNorm gradient of the script; the counterfactual rerun carries the script and removes it', () => {
    const r = repro(
      [
        'audit',
        ...EXAMPLE_ARGS,
        '--python',
        PYTHON,
        '--python',
        PYTHON,
        '--set',
        '1:threads=1',
        '--set',
        '2:threads=2',
        '--repeats',
        '1',
        '--json',
        '--out',
        tmpDir(),
      ],
      {cwd: EXAMPLE},
    )
    assert.equal(r.status, 1, r.stdout + r.stderr)
    const report = JSON.parse(r.stdout) as Report
    const cross = report.comparisons.find((c) => c.role === 'cross')!
    assert.match(cross.divergence.first_divergence!.entry, /^grad\/encoder\.\d+\.weight$/)
    const e = report.attribution!.experiments.find((x) => x.knobs[0]!.name === 'threads')!
    assert.equal(e.outcome, 'disappears', e.note)
    assert.equal(report.attribution!.suspects[0]!.name, 'threads')
  })

  test('a hidden source of nondeterminism the seeding cannot reach: not reproducible inside one target, first entry named', () => {
    const r = repro([
      'audit',
      '--python',
      PYTHON,
      '--script',
      path.join(SCRIPTS, 'hidden_nondeterminism.py'),
      '--repeats',
      '2',
      '--json',
      '--out',
      tmpDir(),
    ])
    assert.equal(r.status, 1, r.stdout + r.stderr)
    const report = JSON.parse(r.stdout) as Report
    assert.match(report.verdict.headline, /^not reproducible within a target: .* r1 vs .* r2 first diverge at step 0, fwd\/0 \(forward\)/)
    assert.equal(report.attribution!.suspects[0]!.confidence, 'high')
  })

  test('the same nondeterministic script against two targets keeps the verdict and exit code of one (it said "reproducible within noise", exit 0)', () => {
    const r = repro([
      'audit',
      '--python',
      PYTHON,
      '--python',
      PYTHON,
      '--script',
      path.join(SCRIPTS, 'hidden_nondeterminism.py'),
      '--repeats',
      '2',
      '--no-explain',
      '--json',
      '--out',
      tmpDir(),
    ])
    assert.equal(r.status, 1, r.stdout + r.stderr)
    const report = JSON.parse(r.stdout) as Report
    assert.match(report.verdict.headline, /^not reproducible within a target: .* r1 vs .* r2 first diverge at step 0, fwd\/0 \(forward\)/)
  })

  test('a missing script and a script that raises: one line each, exit 2', () => {
    const missing = repro(['audit', '--script', 'nope.py', '--out', tmpDir()])
    assert.equal(missing.status, 2)
    assert.match(missing.stderr, /^repro: --script: .*nope\.py does not exist — pass the path of the training script/)
    const raises = repro([
      'audit',
      '--python',
      PYTHON,
      '--script',
      path.join(SCRIPTS, 'failures.py'),
      '--script-args',
      'raise',
      '--repeats',
      '1',
      '--out',
      tmpDir(),
    ])
    assert.equal(raises.status, 2, raises.stdout + raises.stderr)
    assert.match(unwrap(raises.stdout), /#1 python:\S+: ValueError: the last line of the message .* — the script itself raised/)
  })
})

describe("the user's training script in images (real engine)", {skip: needs('docker', 'fixture-images')}, () => {
  test('the example repo on bookworm vs trixie: drift, first divergence at a module path of the script', () => {
    const r = repro(
      [
        'audit',
        ...EXAMPLE_ARGS,
        '--image',
        'repro-fixture:bookworm',
        '--image',
        'repro-fixture:trixie',
        '--repeats',
        '1',
        '--no-explain',
        '--json',
        '--out',
        tmpDir(),
      ],
      {
        cwd: EXAMPLE,
      },
    )
    assert.equal(r.status, 1, r.stdout + r.stderr)
    const report = JSON.parse(r.stdout) as Report
    assert.match(
      report.verdict.headline,
      /^drift between targets: .*bookworm r1 vs .*trixie r1 first diverge at step 0, fwd\/encoder\.\d+ \(forward\)/,
    )
    assert.ok(report.targets.every((t) => t.runs[0]!.script!.truncated === true))
  })

  test('a module one image lacks: one line naming it; the other image still reports', () => {
    const r = repro([
      'audit',
      '--image',
      'repro-fixture:bookworm',
      '--image',
      'repro-fixture:trixie',
      '--script',
      path.join(SCRIPTS, 'old_torch_lib.py'),
      '--repeats',
      '1',
      '--no-explain',
      '--json',
      '--out',
      tmpDir(),
    ])
    assert.equal(r.status, 2, r.stdout + r.stderr)
    const [bookworm, trixie] = (JSON.parse(r.stdout) as Report).targets
    assert.match(
      bookworm!.error!.line,
      /^#1 docker:repro-fixture:bookworm: the script imports module 'repro_torch1_backport', which this target lacks/,
    )
    assert.equal(trixie!.status, 'ok')
    assert.equal(trixie!.runs[0]!.script!.steps_recorded, 3)
  })
})
