// repro doctor on this host: the real engine and Debian's torch are found, their fixes named.

import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {repro} from './helpers.js'
import {needs} from './prereqs.js'

describe('repro doctor', {skip: needs('docker', 'torch')}, () => {
  test('finds the running docker engine and a python with torch; says how to get what is missing', () => {
    const r = repro(['doctor', '--json'])
    assert.equal(r.status, 0, r.stderr)
    const {items, usable} = JSON.parse(r.stdout)
    assert.equal(usable, true)
    const docker = items.find((i: {area: string; name: string}) => i.area === 'engine' && i.name === 'docker')
    assert.equal(docker.ok, true)
    assert.match(docker.detail, /^server \d+\./)
    assert.ok(items.some((i: {area: string; ok: boolean; detail: string}) => i.area === 'python' && i.ok && /torch \d/.test(i.detail)))
    for (const i of items.filter((x: {ok: boolean; area: string}) => !x.ok && x.area !== 'python')) assert.ok(i.hint, `${i.name} has a fix`)
  })
})
