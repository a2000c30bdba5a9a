// repro doctor on this host: the real engines and Debian's torch are found, their fixes named;
// a podman that cannot start containers with its defaults is diagnosed with the lines to change.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {engineMissing, needs, assertPrerequisite, repro, tmpDir} from './helpers.js'

interface Item {
  area: string
  name: string
  ok: boolean
  detail: string
  hint: string | null
}

/** Does this process lack CAP_SYS_RESOURCE (bit 24) in its bounding set, as this VM does? */
function lacksSysResource(): boolean {
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? (BigInt(`0x${m[1]}`) & (1n << 24n)) === 0n : false
}

describe('repro doctor', () => {
  test('finds the running docker engine and a python with torch; says how to get what is missing', () => {
    const r = repro(['doctor', '--json'])
    assert.equal(r.status, 0, r.stderr)
    const {items, usable} = JSON.parse(r.stdout)
    assert.equal(usable, true)
    const docker = items.find((i: Item) => i.area === 'engine' && i.name === 'docker')
    assert.equal(docker.ok, true)
    assert.match(docker.detail, /^server \d+\.\S+ \(linux\/amd64\); starts repro's hardened containers$/)
    assert.ok(items.some((i: Item) => i.area === 'python' && i.ok && /torch \d/.test(i.detail)))
    for (const i of items.filter((x: Item) => !x.ok && x.area !== 'python')) assert.ok(i.hint, `${i.name} has a fix`)
  })

  const podman = engineMissing('podman', ['repro-fixture:no-python'])
  test('reports podman: its server, runtime, and that it starts repro containers', needs(podman), () => {
    assertPrerequisite(podman)
    const {items} = JSON.parse(repro(['doctor', '--json']).stdout)
    const item = items.find((i: Item) => i.name === 'podman')
    assert.equal(item.ok, true, item.detail)
    assert.match(item.detail, /^server \d+\.\S+ \(linux\/amd64\), runtime \w+; starts repro's hardened containers$/)
  })

  test('a podman that cannot start containers with its defaults: why, and the containers.conf lines to change', {
    skip: podman ? podman : !lacksSysResource() && 'this host gives CAP_SYS_RESOURCE: podman starts containers with its defaults here',
  }, () => {
    // podman's defaults, without the drop-in bootstrap wrote: CONTAINERS_CONF names the only file it reads
    const conf = path.join(tmpDir('repro-podman-conf-'), 'containers.conf')
    writeFileSync(conf, '')
    const r = repro(['doctor', '--json'], {env: {CONTAINERS_CONF: conf}})
    const {items, usable} = JSON.parse(r.stdout)
    assert.equal(usable, true)
    assert.equal(items.find((i: Item) => i.name === 'podman').ok, true, 'repro passes its own --ulimit')
    const defaults = items.find((i: Item) => i.name === 'podman defaults')
    assert.equal(defaults.ok, false)
    assert.match(
      defaults.detail,
      /^a plain podman run fails: error setting rlimit type \d: operation not permitted \(the engine may not raise rlimits here: the host gives no CAP_SYS_RESOURCE\); repro passes its own --ulimit/,
    )
    assert.match(defaults.hint, /containers\.conf.*default_ulimits = \["nofile=1024:1024", "nproc=1024:1024"\].*runtime = "runc"/)
  })
})
