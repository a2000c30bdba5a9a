// Real-world image shapes (fixtures/images/derived, each FROM repro-fixture:trixie) on both
// engines: each audited against itself (repeats: exit 0) and against its base. repro must find
// the interpreter the way the image does, keep the image's user and environment, start through
// or around its entrypoint, ignore what it prints, and record all of it in the target identity.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {assertPrerequisite, engineMissing, type EngineName, needs, repro, reproContainers, tmpDir} from './helpers.js'

const FAST = ['--epochs', '1', '--rows', '256']

interface Shape {
  name: string
  /** what the target identity must record */
  identity: Record<string, string | RegExp>
  /** exit code against repro-fixture:trixie */
  vsBase: 0 | 1
  /**
   * also on podman: shapes whose handling differs by engine (who owns the work area, how a
   * missing interpreter or a kept entrypoint fails); the others are about the image alone and
   * run on docker, to keep the suite's time modest
   */
  podman?: true
}

const SHAPES: Shape[] = [
  {name: 'user-1000', vsBase: 0, podman: true, identity: {user: '1000:1000', python: '/usr/bin/python3'}},
  {name: 'openshift', vsBase: 0, podman: true, identity: {user: '4242:0', python: '/usr/bin/python3'}},
  {
    name: 'conda',
    vsBase: 0,
    podman: true,
    identity: {python: '/opt/conda/bin/python', entrypoint_treatment: 'none: the image sets no entrypoint'},
  },
  {name: 'pythonpath', vsBase: 0, identity: {python: '/usr/bin/python3'}},
  {
    name: 'micromamba',
    vsBase: 0,
    podman: true,
    identity: {
      user: '57439:57439',
      entrypoint: '["/usr/local/bin/_entrypoint.sh"]',
      entrypoint_treatment: /^kept: a shell script \(\/usr\/local\/bin\/_entrypoint\.sh, #!\/bin\/bash\) \[--image-entrypoint auto\]$/,
      python: '/opt/conda/envs/train/bin/python3',
    },
  },
  {name: 'sitecustomize', vsBase: 1, identity: {workdir: '/workspace', user: 'root (no USER)'}},
  {
    name: 'ngc-banner',
    vsBase: 0,
    identity: {
      entrypoint_treatment: /^kept: a shell script \(\/opt\/nvidia\/nvidia_entrypoint\.sh, #!\/bin\/bash\)/,
      python: '/usr/bin/python3',
    },
  },
  {name: 'onednn-sse41', vsBase: 0, identity: {python: '/usr/bin/python3'}},
]

interface Report {
  verdict: {status: string; exit_code: number; headline: string}
  targets: {name: string; status: string; error: {line: string} | null; identity: {details: Record<string, unknown>} | null}[]
  comparisons: {role: string; fingerprint_changes: {path: string; a: unknown; b: unknown}[]}[]
}

for (const engine of ['docker', 'podman'] as EngineName[]) {
  const shapes = SHAPES.filter((s) => engine === 'docker' || s.podman)
  const images = ['repro-fixture:trixie', ...shapes.map((s) => `repro-fixture:${s.name}`)]
  const missing = engineMissing(engine, images)
  // One run cache per engine: a shape's runs against itself are reused against its base, and
  // the base is trained once.
  const cacheDir = tmpDir('repro-shapes-cache-')
  const audit = (args: string[]) => {
    const r = repro(['audit', '--engine', engine, ...args, '--json', '--out', tmpDir(), ...FAST], {cacheDir})
    assert.deepEqual(reproContainers(engine, r), [], 'no container left')
    return {...r, report: JSON.parse(r.stdout) as Report}
  }

  describe(`image shapes on ${engine}`, () => {
    for (const shape of shapes) {
      const image = `repro-fixture:${shape.name}`
      test(`${shape.name} against itself: bitwise reproducible, exit 0, identity recorded`, needs(missing), () => {
        assertPrerequisite(missing)
        const r = audit(['--image', image, '--repeats', '2'])
        assert.equal(r.status, 0, `${r.report.targets[0]?.error?.line ?? r.report.verdict.headline}\n${r.stderr}`)
        const details = r.report.targets[0]!.identity!.details
        for (const [k, want] of Object.entries(shape.identity)) {
          if (typeof want === 'string') assert.equal(details[k], want, k)
          else assert.match(String(details[k]), want, k)
        }
        for (const k of ['user', 'workdir', 'entrypoint_treatment', 'python', 'work_area']) assert.ok(k in details, `identity has ${k}`)
      })

      test(`${shape.name} against its base (repro-fixture:trixie): exit ${shape.vsBase}`, needs(missing), () => {
        assertPrerequisite(missing)
        const r = audit(['--image', 'repro-fixture:trixie', '--image', image, '--repeats', '1'])
        assert.equal(r.status, shape.vsBase, `${r.report.targets.map((t) => t.error?.line).join(' | ')} ${r.report.verdict.headline}`)
        const cross = r.report.comparisons.find((c) => c.role === 'cross')!
        const row = (p: string) => cross.fingerprint_changes.find((x) => x.path === p)
        if (shape.name === 'sitecustomize') {
          assert.deepEqual([row('env.OMP_NUM_THREADS')?.a, row('env.OMP_NUM_THREADS')?.b], [undefined, '4'])
          assert.match(r.report.verdict.headline, /top suspect: .*threads/)
        }
        if (shape.name === 'onednn-sse41')
          assert.deepEqual([row('env.ONEDNN_MAX_CPU_ISA')?.a, row('env.ONEDNN_MAX_CPU_ISA')?.b], [undefined, 'SSE41'])
        if (shape.name === 'conda')
          assert.deepEqual([row('python.executable')?.a, row('python.executable')?.b], ['/usr/bin/python3', '/opt/conda/bin/python'])
      })
    }

    test(
      '--python-in-image names the interpreter; with the entrypoint skipped, the activated env is not on PATH and the error says so',
      needs(missing),
      () => {
        assertPrerequisite(missing)
        const named = audit([
          '--image',
          'repro-fixture:micromamba',
          '--image-entrypoint',
          'skip',
          '--python-in-image',
          '/opt/conda/envs/train/bin/python',
          '--repeats',
          '1',
        ])
        assert.equal(named.status, 0, named.report.targets[0]?.error?.line)
        const details = named.report.targets[0]!.identity!.details
        assert.equal(details['python_requested'], '/opt/conda/envs/train/bin/python')
        assert.equal(details['entrypoint_treatment'], 'skipped: /usr/local/bin/_entrypoint.sh [--image-entrypoint skip]')
        const skipped = audit(['--image', 'repro-fixture:micromamba', '--image-entrypoint', 'skip', '--repeats', '1'])
        assert.equal(skipped.status, 2)
        assert.match(
          skipped.report.targets[0]!.error!.line,
          /the image has neither python3 nor python on its PATH \(\/usr\/local\/sbin:[^)]*\) — use an image with python3 and torch installed, or name its interpreter with --python-in-image PATH$/,
        )
      },
    )
  })
}
