// The user's own training script, end to end with the real probe: examples/ml-repo's train.py
// (its own package, data file and a two-worker DataLoader; its project is copied whole) on the
// host python and on the Debian fixture images, a script with a hidden source of
// nondeterminism, a repo whose data git ignores, and the failure modes as one line each.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {execFileSync} from 'node:child_process'
import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {PYTHON, ROOT, repro, tmpDir, unwrap} from './helpers.js'
import {needs} from './prereqs.js'

const EXAMPLE = path.join(ROOT, 'examples', 'ml-repo')
const SCRIPTS = path.join(ROOT, 'probe', 'tests', 'scripts')
// fraudnet/ and data/ are tracked: the project copy (examples/ml-repo, which holds repro.config.json) has them
const EXAMPLE_ARGS = ['--script', 'train.py', '--script-args', '--epochs 2', '--max-steps', '20']
/** the probe's test scripts are their own project (else the copy would be all of repro's repo) */
const SCRIPTS_PROJECT = ['--project', SCRIPTS, '--cwd', SCRIPTS]

/** A git repo whose train.py imports a sibling module and reads data/train.bin, which git ignores. */
function ignoredDataRepo(): string {
  const repo = tmpDir('repro-script-repo-')
  mkdirSync(path.join(repo, 'data'))
  writeFileSync(path.join(repo, '.gitignore'), 'data/\n')
  writeFileSync(path.join(repo, 'data', 'train.bin'), Buffer.from(Array.from({length: 64}, (_, i) => i)))
  writeFileSync(
    path.join(repo, 'model.py'),
    'import torch\n\n\nclass Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.fc = torch.nn.Linear(4, 2)\n\n    def forward(self, x):\n        return self.fc(x)\n',
  )
  writeFileSync(
    path.join(repo, 'train.py'),
    [
      'import torch',
      'from model import Net',
      '',
      'with open("data/train.bin", "rb") as f:',
      '    raw = f.read()',
      'x = torch.tensor([b / 64.0 for b in raw], dtype=torch.float32).reshape(16, 4)',
      'y = torch.arange(16) % 2',
      'net = Net()',
      'opt = torch.optim.SGD(net.parameters(), lr=0.1)',
      'for _ in range(3):',
      '    opt.zero_grad()',
      '    torch.nn.functional.cross_entropy(net(x), y).backward()',
      '    opt.step()',
      '',
    ].join('\n'),
  )
  const git = (...args: string[]) => execFileSync('git', args, {cwd: repo, stdio: 'ignore'})
  git('init', '-q')
  git('add', '-A')
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'repo')
  return repo
}

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
      ...SCRIPTS_PROJECT,
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
      ...SCRIPTS_PROJECT,
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

  test('a repo whose data git ignores: without --include data one line names data/train.bin and --include data (exit 2); with it, exit 0', () => {
    const repo = ignoredDataRepo()
    const base = ['audit', '--python', PYTHON, '--script', 'train.py', '--repeats', '1', '--no-explain', '--json']
    const without = repro([...base, '--out', tmpDir()], {cwd: repo})
    assert.equal(without.status, 2, without.stdout + without.stderr)
    const line = (JSON.parse(without.stdout) as Report).targets[0]!.error!.line
    assert.match(
      line,
      /^#1 python:\S+: the script needs data\/train\.bin, which exists on the host but was not copied \(git ignores it\) — add it with --include data$/,
    )
    const withData = repro([...base, '--include', 'data', '--out', tmpDir()], {cwd: repo})
    assert.equal(withData.status, 0, withData.stdout + withData.stderr)
    const run = (JSON.parse(withData.stdout) as Report).targets[0]!.runs[0]!
    assert.equal(run.script!.steps_recorded, 3)
  })

  test('--list-inputs: the copy (sizes, paths relative to the root), totals, root, cwd and script as mapped; nothing runs', () => {
    const repo = ignoredDataRepo()
    mkdirSync(path.join(repo, 'sub'))
    const r = repro(['audit', '--script', '../train.py', '--include', '../data', '--include', '../model.py', '--list-inputs'], {
      cwd: path.join(repo, 'sub'),
    })
    assert.equal(r.status, 0, r.stdout + r.stderr)
    const lines = r.stdout.trimEnd().split('\n')
    assert.deepEqual(
      lines.slice(0, 4).map((l) => l.trim().replace(/^\S+ \S+\s+/, '')),
      ['.gitignore', 'data/train.bin', 'model.py', 'train.py'],
    )
    assert.match(lines[1]!, /^\s*64 B {2}data\/train\.bin$/)
    assert.match(r.stdout, /^4 files, \d+(\.\d)? (B|KiB) \(cap: 5000 files, 64\.0 MiB\)$/m)
    assert.match(r.stdout, /^root {4}\S+ → project$/m)
    assert.match(r.stdout, /^cwd {5}project\/sub$/m)
    assert.match(r.stdout, /^script {2}project\/train\.py$/m)
    // model.py is tracked: the include adds nothing, and says so on stderr
    assert.match(r.stderr, /^repro: warning: --include model\.py: adds nothing, it is already wholly in the project copy$/m)
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
      ...SCRIPTS_PROJECT,
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
      ...SCRIPTS_PROJECT,
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
