import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {targetOrder} from '../../../src/app/targets.js'
import {parseImageInspect} from '../../../src/targets/engine.js'

describe('target order and image identity', () => {
  test('--python and --image keep their command-line order (that is what --set N: numbers)', () => {
    const argv = ['--image', 'a:1', '--python', '/usr/bin/python3', '--image=b:2', '--repeats', '2']
    assert.deepEqual(targetOrder(argv, {python: ['/usr/bin/python3'], image: ['a:1', 'b:2']}), [
      {kind: 'image', value: 'a:1'},
      {kind: 'python', value: '/usr/bin/python3'},
      {kind: 'image', value: 'b:2'},
    ])
  })
  test('image inspect output is parsed and capped', () => {
    const id = parseImageInspect(
      JSON.stringify([
        {
          Id: 'sha256:1',
          RepoTags: ['x:1'],
          RepoDigests: [],
          Created: '2026-01-01',
          Architecture: 'amd64',
          Os: 'linux',
          Config: {Labels: {a: 'b', big: 'z'.repeat(5000)}},
        },
      ]),
    )
    assert.equal(id.id, 'sha256:1')
    assert.deepEqual(id.tags, ['x:1'])
    assert.equal(id.labels['big']!.length, 1024)
  })
})
