import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {renderDoctor} from '../../../src/report/doctor.js'

const ITEMS = [
  {area: 'engine', name: 'docker', ok: true, detail: 'server 20.10.24+dfsg1 (linux/amd64); starts repro’s hardened containers', hint: null},
  {
    area: 'engine',
    name: 'podman',
    ok: false,
    detail: 'server 4.3.1 (linux/amd64), runtime crun; cannot start a container: setrlimit RLIMIT_NOFILE: Operation not permitted',
    hint: 'add to /etc/containers/containers.conf: [containers] default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"] and [engine] runtime = "runc"',
  },
  {area: 'python', name: '/usr/bin/python3', ok: true, detail: '/usr/bin/python3: Python 3.11.2, torch 1.13.0a0', hint: null},
  {
    area: 'gpu',
    name: 'nvidia',
    ok: false,
    detail: 'no NVIDIA driver loaded (CPU audits only)',
    hint: 'for CUDA audits: an NVIDIA GPU with its driver',
  },
]

describe('repro doctor in the terminal', () => {
  for (const width of [80, 120, 160]) {
    test(`fits ${width} columns, every fix kept in full (it was 157 wide whatever the terminal)`, () => {
      const out = renderDoctor(ITEMS, true, width)
      const lines = out.split('\n')
      assert.ok(Math.max(...lines.map((l) => [...l].length)) <= width, out)
      // wrapped, not cut: every word of every fix is there
      for (const word of ITEMS.flatMap((i) => (i.hint ?? '').split(/\s+/)).filter(Boolean)) assert.ok(out.includes(word), word)
      assert.equal(lines.at(-1), 'repro can audit on this host.')
    })
  }
})
