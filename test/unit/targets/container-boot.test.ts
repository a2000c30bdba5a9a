// The launcher that runs inside probe containers (probe/container_boot.py), run here with the
// host's python against a stand-in probe: it waits for `ready`, runs `python -m repro_probe`
// semantics, keeps the image's PYTHONPATH, and reports through status.json, not stdout.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {probeRoot} from '../../../src/targets/probe-path.js'

const PYTHON = process.env['REPRO_TEST_PYTHON'] ?? '/usr/bin/python3'
const BOOT = readFileSync(path.join(probeRoot(), 'container_boot.py'), 'utf8')

const STAND_IN = `import json, os, sys
print("banner on stdout: status 0 exit 0")
out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out)
with open(os.path.join(out, "seen.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "pythonpath": os.environ.get("PYTHONPATH"), "name": __name__}, f)
if os.environ.get("FILL"):
    try:
        with open(os.path.join(out, "fill"), "wb") as f:
            while True:
                f.write(b"x" * 65536)
    except OSError as e:
        sys.stderr.write("OSError: %s\\n" % e)
        sys.exit(3)
sys.exit(3)
`

function workArea(): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'repro-boot-'))
  mkdirSync(path.join(root, 'probe', 'repro_probe'), {recursive: true})
  writeFileSync(path.join(root, 'probe', 'repro_probe', '__init__.py'), '')
  writeFileSync(path.join(root, 'probe', 'repro_probe', '__main__.py'), STAND_IN)
  return root
}

function launch(root: string, env: Record<string, string>, linger = 1) {
  const child = spawn(PYTHON, ['-c', BOOT, root, String(linger), 'train', '--config', `${root}/in/config.json`, '--out', `${root}/out`], {
    env: {PATH: '/usr/bin:/bin', ...env},
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d) => {
    stderr += d
  })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
  return {exited, stderr: () => stderr}
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('the launcher inside probe containers (probe/container_boot.py)', () => {
  test('waits for `ready`, runs the probe as python -m repro_probe, adds its path to the image PYTHONPATH, reports in status.json', async () => {
    const root = workArea()
    const run = launch(root, {PYTHONPATH: '/opt/site'})
    await sleep(400)
    assert.ok(!existsSync(path.join(root, 'out')), 'nothing runs before the inputs are complete')
    writeFileSync(path.join(root, 'ready'), '')
    assert.equal(await run.exited, 3)
    const status = JSON.parse(readFileSync(path.join(root, 'status.json'), 'utf8'))
    assert.equal(status.exit, 3)
    assert.equal(status.full, false)
    assert.match(status.python, /python/)
    const seen = JSON.parse(readFileSync(path.join(root, 'out', 'seen.json'), 'utf8'))
    assert.equal(seen.name, '__main__')
    assert.deepEqual(seen.argv, ['train', '--config', `${root}/in/config.json`, '--out', `${root}/out`])
    assert.equal(seen.pythonpath, `/opt/site:${root}/probe`)
    assert.ok(!existsSync(path.join(root, '.reserve')))
  })

  test('in a Pod: `collected` ends the linger at once, and the status also goes to REPRO_TERMINATION_LOG', async () => {
    const root = workArea()
    const log = path.join(root, 'termination-log')
    writeFileSync(log, '')
    const t0 = Date.now()
    const run = launch(root, {REPRO_TERMINATION_LOG: log}, 60)
    writeFileSync(path.join(root, 'ready'), '')
    const status = path.join(root, 'status.json')
    while (!existsSync(status)) await sleep(50)
    writeFileSync(path.join(root, 'collected'), '')
    assert.equal(await run.exited, 3)
    assert.ok(Date.now() - t0 < 20_000, 'ended by `collected`, not by its 60 s linger')
    assert.deepEqual(JSON.parse(readFileSync(log, 'utf8')), JSON.parse(readFileSync(status, 'utf8')))
  })

  test('inputs that never arrive: it gives up after its linger time, with a line on stderr', async () => {
    const root = workArea()
    const run = launch(root, {})
    assert.equal(await run.exited, 70)
    assert.match(run.stderr(), /the probe's inputs never arrived/)
  })

  test('a probe that fills the work area is reported as full (space was reserved for the status)', {
    skip: process.getuid?.() !== 0 && 'needs root to mount a small tmpfs',
  }, async () => {
    const root = workArea()
    const small = mkdtempSync(path.join(os.tmpdir(), 'repro-boot-full-'))
    const {spawnSync} = await import('node:child_process')
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]).status, 0)
    try {
      spawnSync('cp', ['-r', path.join(root, 'probe'), small])
      const run = launch(small, {FILL: '1'})
      writeFileSync(path.join(small, 'ready'), '')
      assert.equal(await run.exited, 3)
      const status = JSON.parse(readFileSync(path.join(small, 'status.json'), 'utf8'))
      assert.equal(status.full, true)
      assert.equal(status.exit, 3)
    } finally {
      spawnSync('umount', [small])
    }
  })

  test('a hostile thread in the launcher itself takes back the released reserve: the status still gets out, full', {
    skip: process.getuid?.() !== 0 && 'needs root to mount a small tmpfs',
  }, async () => {
    // repro-fixture:fill-work-area's sitecustomize runs in the launcher's python too: once the
    // probe has ended and the reserve is released, its thread takes that space back, and a status
    // written into new pages failed with ENOSPC (the launcher died; podman then reported a crash)
    const root = workArea()
    const small = mkdtempSync(path.join(os.tmpdir(), 'repro-boot-refill-'))
    const {spawnSync} = await import('node:child_process')
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]).status, 0)
    try {
      spawnSync('cp', ['-r', path.join(root, 'probe'), small])
      // the hostile thread winning the race, made deterministic: the space is taken back the
      // moment the reserve is released
      const filler = `import os
_unlink = os.unlink
def _take_back(path, *args, **kwargs):
    _unlink(path, *args, **kwargs)
    if str(path).endswith(".reserve"):
        root, n = os.path.dirname(str(path)), 0
        while True:
            try:
                with open(os.path.join(root, "junk%d" % n), "wb") as f:
                    f.write(b"j" * 4096)
                n += 1
            except OSError:
                break
os.unlink = _take_back
`
      const child = spawn(
        PYTHON,
        ['-c', filler + BOOT, small, '1', 'train', '--config', `${small}/in/config.json`, '--out', `${small}/out`],
        {
          env: {PATH: '/usr/bin:/bin', FILL: '1'},
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      let stderr = ''
      child.stderr.on('data', (d) => {
        stderr += d
      })
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
      writeFileSync(path.join(small, 'ready'), '')
      assert.equal(await exited, 3, stderr)
      const status = JSON.parse(readFileSync(path.join(small, 'status.json'), 'utf8'))
      assert.deepEqual([status.exit, status.full], [3, true])
    } finally {
      spawnSync('umount', [small])
    }
  })

  describe("serve: one container, many runs (a target's runs one by one)", () => {
    // A stand-in probe that reports who ran it and where, leaves a daemonised grandchild
    // behind, writes into the scratch folder and the emptied DIR, and ends as its input says.
    const SERVED = `import json, os, signal, subprocess, sys, time
out = sys.argv[sys.argv.index("--out") + 1]
cfg = json.load(open(sys.argv[sys.argv.index("--config") + 1]))
os.makedirs(out)
tmp = os.environ["TEST_TMP"]
seen = {"pid": os.getpid(), "argv": sys.argv[1:], "cwd": os.getcwd(), "name": cfg["name"],
        "tmp_before": sorted(os.listdir(tmp)), "pythonpath": os.environ.get("PYTHONPATH"),
        "oom_score_adj": open("/proc/self/oom_score_adj").read().strip()}
open(os.path.join(tmp, "left-by-" + cfg["name"]), "w").close()
os.makedirs(os.environ["REPRO_PROBE_SCRATCH"], exist_ok=True)
open(os.path.join(os.environ["REPRO_PROBE_SCRATCH"], "kernel.so"), "w").close()
stray = subprocess.Popen(["sleep", "300"], start_new_session=True)
seen["stray"] = stray.pid
with open(os.path.join(out, "seen.json.part"), "w") as f:  # whole or absent: the test polls for it
    json.dump(seen, f)
os.rename(os.path.join(out, "seen.json.part"), os.path.join(out, "seen.json"))
sys.stderr.write("stderr of %s\\n" % cfg["name"])
sys.stderr.flush()
if cfg.get("kill"):
    os.kill(os.getpid(), signal.SIGKILL)
os._exit(0)  # the stray is not waited for
`
    function serveArea() {
      const root = mkdtempSync(path.join(os.tmpdir(), 'repro-serve-'))
      mkdirSync(path.join(root, 'probe', 'repro_probe'), {recursive: true})
      writeFileSync(path.join(root, 'probe', 'repro_probe', '__init__.py'), '')
      writeFileSync(path.join(root, 'probe', 'repro_probe', '__main__.py'), SERVED)
      const tmp = mkdtempSync(path.join(os.tmpdir(), 'repro-serve-tmp-'))
      const child = spawn(PYTHON, ['-S', '-c', BOOT, root, '3', 'serve', tmp], {
        env: {PATH: '/usr/bin:/bin', PYTHONPATH: '/opt/site', TEST_TMP: tmp, REPRO_PROBE_SCRATCH: `${root}/scratch`},
        stdio: ['ignore', 'ignore', 'pipe'],
      })
      let stderr = ''
      child.stderr.on('data', (d) => {
        stderr += d
      })
      const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)))
      return {root, tmp, exited, stderr: () => stderr}
    }
    function submit(root: string, seq: number, config: Record<string, unknown>): void {
      const at = path.join(root, 'jobs', String(seq))
      mkdirSync(path.join(at, 'in', 'sub'), {recursive: true})
      writeFileSync(path.join(at, 'in', 'config.json'), JSON.stringify(config))
      writeFileSync(path.join(at, 'in', 'sub', 'data.bin'), 'x')
      writeFileSync(path.join(at, 'job.json'), JSON.stringify({mode: 'train'}))
      writeFileSync(path.join(at, 'ready'), '')
    }
    const collect = (root: string, seq: number) => writeFileSync(path.join(root, 'jobs', String(seq), 'collected'), '')
    async function statusOf(root: string): Promise<Record<string, unknown>> {
      const file = path.join(root, 'status.json')
      const until = Date.now() + 20_000
      while (!existsSync(file)) {
        assert.ok(Date.now() < until, 'no status.json within 20 s')
        await sleep(20)
      }
      return JSON.parse(readFileSync(file, 'utf8'))
    }
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }

    test('each run a fresh python at the one-run paths; what a run leaves (strays, scratch, DIR files, artifacts) is gone before the next; idle it ends', async () => {
      const area = serveArea()
      const {root, tmp} = area
      submit(root, 1, {name: 'one'})
      const s1 = await statusOf(root)
      assert.deepEqual([s1['exit'], s1['signal'], s1['full']], [0, null, false])
      const seen1 = JSON.parse(readFileSync(path.join(root, 'out', 'seen.json'), 'utf8'))
      assert.deepEqual(seen1.argv, ['train', '--config', `${root}/in/config.json`, '--out', `${root}/out`])
      assert.equal(seen1.pythonpath, `/opt/site:${root}/probe`)
      assert.equal(seen1.oom_score_adj, '1000', "the run, not the supervisor, is the OOM killer's choice")
      assert.ok(!alive(seen1.stray), 'the daemonised grandchild was killed when the run ended')
      assert.equal(readFileSync(path.join(root, 'stderr.tail'), 'utf8'), 'stderr of one\n')
      assert.ok(existsSync(path.join(root, 'ready')), "a one-run container's `ready` is there while the run runs")
      assert.equal(readFileSync(path.join(root, 'in', 'sub', 'data.bin'), 'utf8'), 'x', 'the inputs, folders too, at /repro/in')
      // nothing the engine wrote was moved (its cp sets folders' times once all is written)
      assert.ok(existsSync(path.join(root, 'jobs', '1', 'in', 'sub', 'data.bin')))
      // the next run waits in jobs/2 until this one is collected
      submit(root, 2, {name: 'two'})
      await sleep(300)
      assert.equal(JSON.parse(readFileSync(path.join(root, 'out', 'seen.json'), 'utf8')).name, 'one')
      collect(root, 1)
      while (
        !existsSync(path.join(root, 'out', 'seen.json')) ||
        JSON.parse(readFileSync(path.join(root, 'out', 'seen.json'), 'utf8')).name !== 'two'
      )
        await sleep(20)
      const s2 = await statusOf(root)
      assert.equal(s2['exit'], 0)
      const seen2 = JSON.parse(readFileSync(path.join(root, 'out', 'seen.json'), 'utf8'))
      assert.notEqual(seen2.pid, seen1.pid, 'a fresh process per run')
      assert.deepEqual(seen2.tmp_before, [], 'the DIR was emptied between the runs')
      assert.deepEqual(readdirSync(path.join(root, 'scratch')), ['kernel.so'], "scratch holds only this run's file")
      assert.equal(JSON.parse(readFileSync(path.join(root, 'in', 'config.json'), 'utf8')).name, 'two')
      assert.equal(readFileSync(path.join(root, 'stderr.tail'), 'utf8'), 'stderr of two\n')
      // a run killed by a signal: its exit as a shell reports it, and the signal
      collect(root, 2)
      submit(root, 3, {name: 'three', kill: true})
      while (
        !existsSync(path.join(root, 'out', 'seen.json')) ||
        JSON.parse(readFileSync(path.join(root, 'out', 'seen.json'), 'utf8')).name !== 'three'
      )
        await sleep(20)
      const s3 = await statusOf(root)
      assert.deepEqual([s3['exit'], s3['signal']], [137, 9])
      collect(root, 3)
      // idle for its linger (3 s): it ends, the work area holding only the probe
      assert.equal(await area.exited, 0, area.stderr())
      assert.deepEqual(readdirSync(root).sort(), ['.reserve', 'jobs', 'probe'])
      // of the runs' folders, only the last one's `collected` (the engine may still be setting its times)
      assert.deepEqual(readdirSync(path.join(root, 'jobs')), ['3'])
      assert.deepEqual(readdirSync(path.join(root, 'jobs', '3')), ['collected'])
      assert.deepEqual(readdirSync(tmp), [])
    })
  })
})
