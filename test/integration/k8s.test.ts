// `repro audit --executor k8s --dry-run` (docs/scale-out.md): no cluster here, so the Job's Pod
// template is run where it can be — under `podman kube play --network none` — fed the inputs
// the podman target gets and emptied the way the design says (python through `exec` into the
// lingering launcher), and its run must be bitwise the podman target's own run. Then `podman
// kube down` must leave nothing: no pod, no container, no volume.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {FILE_CAPS, readRunDir} from '../../src/artifacts/run-dir.js'
import {traceDigest} from '../../src/artifacts/trace-digest.js'
import {inputsTar} from '../../src/targets/container.js'
import {POD_COLLECTED, POD_COPY_IN, POD_COPY_OUT} from '../../src/targets/k8s.js'
import {extractTar} from '../../src/targets/tar.js'
import {Job} from 'kubernetes-models/batch/v1'
import {NetworkPolicy} from 'kubernetes-models/networking.k8s.io/v1'
import {Pod} from 'kubernetes-models/v1'
import {assertPrerequisite, engineMissing, needs, PYTHON, repro, sleep, tmpDir} from './helpers.js'

const FAST = ['--epochs', '1', '--rows', '512', '--repeats', '1']
const IMAGE = 'repro-fixture:bookworm'

function podman(args: string[], input?: Buffer) {
  const r = spawnSync('podman', args, {input, maxBuffer: 1 << 30, timeout: 120_000})
  return {status: r.status, stdout: r.stdout, text: r.stdout?.toString() ?? '', stderr: r.stderr?.toString() ?? ''}
}

/** What is left of a played pod: its pod, its containers, the volumes its emptyDirs became. */
function leftovers(pod: string): string[] {
  const pods = podman(['pod', 'ps', '--filter', `name=^${pod}$`, '--format', '{{.Name}}']).text
  const containers = podman(['ps', '-a', '--filter', `name=^${pod}`, '--format', '{{.Names}}']).text
  const volumes = podman(['volume', 'ls', '--format', '{{.Name}}'])
    .text.split('\n')
    .filter((v) => v === 'repro-work' || v === 'repro-tmp')
  return [...pods.split('\n'), ...containers.split('\n'), ...volumes].filter(Boolean)
}

describe('--executor k8s (manifests only)', () => {
  test('without --dry-run: one line, exit 2, saying only the dry run exists', () => {
    const r = repro(['audit', '--executor', 'k8s', '--image', IMAGE])
    assert.equal(r.status, 2)
    assert.match(r.stderr, /--executor k8s: only the dry run exists.*add --dry-run/s)
    assert.equal(r.stderr.trim().split('\n').length <= 2, true, r.stderr)
  })

  const docker = engineMissing('docker', [IMAGE, 'repro-fixture:trixie'])
  test('the command of docs/scale-out.md: a Job and a policy per image, every object valid as written', needs(docker), () => {
    assertPrerequisite(docker)
    const out = tmpDir()
    // the documented command, with only --out moved to a temporary folder
    const r = repro([
      'audit',
      '--executor',
      'k8s',
      '--dry-run',
      '--image',
      IMAGE,
      '--image',
      'repro-fixture:trixie',
      '--jobs',
      '2',
      '--out',
      out,
    ])
    assert.equal(r.status, 0, r.stderr)
    assert.match(r.stdout, /repro-fixture:bookworm: 2 run\(s\) as Job repro-t1-[0-9a-f]{8}/)
    const files = readdirSync(path.join(out, 'k8s')).sort()
    assert.equal(files.length, 4, files.join(' '))
    const kinds: string[] = []
    for (const f of files) {
      const parsed = spawnSync(PYTHON, ['-c', 'import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))'], {
        input: readFileSync(path.join(out, 'k8s', f)),
        encoding: 'utf8',
      })
      assert.equal(parsed.status, 0, parsed.stderr)
      for (const doc of JSON.parse(parsed.stdout)) {
        kinds.push(doc.kind)
        const Model = {Job, NetworkPolicy, Pod}[doc.kind as 'Job' | 'NetworkPolicy' | 'Pod']
        new Model(doc).validate()
      }
    }
    assert.deepEqual(kinds.sort(), ['Job', 'Job', 'NetworkPolicy', 'NetworkPolicy', 'Pod', 'Pod'])
    for (const cell of ['t1-r1', 't1-r2', 't2-r1', 't2-r2']) assert.ok(existsSync(path.join(out, cell, 'inputs', 'config.json')), cell)
  })

  const missing = engineMissing('podman', [IMAGE])
  test(
    'the Pod template under podman kube play --network none: the podman target’s inputs in, the same trace out, nothing left after kube down',
    needs(missing),
    async () => {
      assertPrerequisite(missing)
      const local = tmpDir()
      const a = repro(['audit', '--engine', 'podman', '--image', IMAGE, '--no-explain', '--json', '--out', local, ...FAST])
      assert.equal(a.status, 0, a.stderr)
      const expected = JSON.parse(a.stdout).targets[0].trace_digest.root as string

      const {out, batch} = dryRun(IMAGE)
      // the cell's inputs are the ones the podman target got, byte for byte
      for (const f of ['config.json', 'data.safetensors'])
        assert.ok(readFileSync(path.join(out, 't1-r1', 'inputs', f)).equals(readFileSync(path.join(local, 't1-r1', 'inputs', f))), f)
      const played = await playCell(batch, path.join(out, 't1-r1', 'inputs'))
      // the hardening, seen from inside: loopback only, a read-only root, no capabilities, no new privileges
      assert.deepEqual(played.inside.net, ['lo'])
      assert.equal(played.inside.root, 'Read-only file system')
      assert.equal(played.inside.caps, '0000000000000000')
      assert.equal(played.inside.nnp, '1')
      assert.equal(played.limits, `${4 * 1024 ** 3} 2000000000 true`)
      assert.equal(played.status.exit, 0)
      // the termination message the kubelet would read is the status
      assert.deepEqual(JSON.parse(played.inside.termination), played.status)
      const artifacts = await readRunDir(played.run, 'pod')
      assert.equal(traceDigest(artifacts.trace).root, expected, 'the Pod’s run is bitwise the podman target’s')
      const compared = repro(['compare', path.join(local, 't1-r1'), played.run, '--json'])
      assert.equal(compared.status, 0, compared.stderr)
    },
  )

  const shapes = engineMissing('podman', ['repro-fixture:ngc-banner', 'repro-fixture:user-1000'])
  test(
    "a kept entrypoint and an image user: the Pod starts the launcher through the image's entrypoint, as the image's user",
    needs(shapes),
    async () => {
      assertPrerequisite(shapes)
      // NGC-style: a shell-script entrypoint that prints a banner, then runs its arguments
      const banner = dryRun('repro-fixture:ngc-banner')
      assert.match(readFileSync(banner.batch.pod, 'utf8'), /\n {6}args:\n {8}- python3\n/)
      assert.doesNotMatch(readFileSync(banner.batch.pod, 'utf8'), /command:/)
      const viaEntrypoint = await playCell(banner.batch, path.join(banner.out, 't1-r1', 'inputs'))
      assert.equal(viaEntrypoint.status.exit, 0)
      assert.match(viaEntrypoint.logs, /NVIDIA Release/)
      // USER 1000:1000: the work area is writable for it, and the probe runs as it
      const user = dryRun('repro-fixture:user-1000')
      const asUser = await playCell(user.batch, path.join(user.out, 't1-r1', 'inputs'))
      assert.deepEqual([asUser.status.exit, asUser.status.uid], [0, 1000])
      assert.ok((await readRunDir(asUser.run, 'pod')).trace.steps.length > 0)
    },
  )
})

interface DryRunBatch {
  name: string
  pod: string
  cells: string[]
}

/** The dry run of a one-run audit of `image` (podman inspects it): its folder and its one batch. */
function dryRun(image: string): {out: string; batch: DryRunBatch} {
  const out = tmpDir()
  const d = repro(['audit', '--executor', 'k8s', '--dry-run', '--engine', 'podman', '--image', image, '--json', '--out', out, ...FAST])
  assert.equal(d.status, 0, d.stderr)
  const batch = JSON.parse(d.stdout).batches[0] as DryRunBatch
  assert.deepEqual(batch.cells, ['t1-r1'])
  return {out, batch}
}

/**
 * One cell in the batch's Pod template, as the design drives an index: `kube play --network none`,
 * the inputs in, wait for status.json, the artifacts out, `collected`, the container exits 0;
 * then `kube down`, which must leave nothing.
 */
async function playCell(batch: DryRunBatch, inputDir: string) {
  const pod = `${batch.name}-pod`
  const probe = `${pod}-probe`
  assert.deepEqual(leftovers(pod), [])
  try {
    const played = podman(['kube', 'play', '--network', 'none', batch.pod])
    assert.equal(played.status, 0, played.stderr)
    const copied = podman(['exec', '-i', probe, 'python3', '-c', POD_COPY_IN], await inputsTar({inputDir}))
    assert.equal(copied.status, 0, copied.stderr)
    const until = Date.now() + 120_000
    while (podman(['exec', probe, 'python3', '-c', 'import os, sys; sys.exit(not os.path.exists("/repro/status.json"))']).status !== 0) {
      assert.ok(Date.now() < until, 'no status.json within 120 s')
      await sleep(300)
    }
    const seen = podman(['exec', probe, 'python3', '-c', INSIDE])
    assert.equal(seen.status, 0, seen.stderr)
    const limits = podman(['inspect', probe, '--format', '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.ReadonlyRootfs}}'])
    const tar = podman(['exec', probe, 'python3', '-c', POD_COPY_OUT])
    assert.equal(tar.status, 0, tar.stderr)
    const run = tmpDir()
    for (const f of extractTar(tar.stdout, {...FILE_CAPS, 'status.json': 64 * 1024})) writeFileSync(path.join(run, f.name), f.data)
    // `collected` ends the launcher: the container exits with the probe's code, as a Job's index completes
    assert.equal(podman(['exec', probe, 'python3', '-c', POD_COLLECTED]).status, 0)
    assert.equal(podman(['wait', probe]).text.trim(), '0')
    const logs = podman(['logs', probe])
    return {
      run,
      status: JSON.parse(readFileSync(path.join(run, 'status.json'), 'utf8')),
      inside: JSON.parse(seen.text),
      limits: limits.text.trim(),
      logs: logs.text + logs.stderr,
    }
  } finally {
    const down = podman(['kube', 'down', batch.pod])
    assert.equal(down.status, 0, down.stderr)
    assert.deepEqual(leftovers(pod), [])
  }
}

/**
 * What the Pod looks like from inside: its network, its root, its capabilities, the termination
 * message (podman mounts no file there: the launcher, as root, writes one into the container's
 * own /dev; as another user it cannot, and the status then reaches the host only by the copy).
 */
const INSIDE = `import json, os
log = "/dev/termination-log"
status = dict(l.split(":\\t") for l in open("/proc/self/status").read().splitlines() if ":\\t" in l)
try:
    open("/etc/repro-write-test", "w")
    root = "writable"
except OSError as e:
    root = e.strerror
print(json.dumps({"net": sorted(os.listdir("/sys/class/net")), "root": root, "caps": status["CapEff"], "nnp": status["NoNewPrivs"],
                  "termination": open(log).read() if os.path.exists(log) else None}))`
