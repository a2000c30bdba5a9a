import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {planRuns, targetOccurrences} from '../../../src/core/audit-plan.js'

describe('audit plan', () => {
  test('occurrences count repeated targets up in order; distinct targets are each the first', () => {
    assert.deepEqual(targetOccurrences(['a', 'b', 'a', 'a', 'c']), [1, 1, 2, 3, 1])
  })

  test('cache tags name the occurrence and the repeat, not the position: #1 of one audit is #2 of another', () => {
    const tags = (target: number, occurrence: number) => planRuns(target, 2, 1234, 2, occurrence).map((r) => r.cacheTag)
    assert.deepEqual(tags(1, 1), ['o1-r1', 'o1-r2', 'o1-seed'])
    assert.deepEqual(tags(2, 1), tags(1, 1))
    assert.notDeepEqual(tags(2, 2), tags(1, 1))
    // directories still carry the position: one audit's runs never share a directory
    assert.deepEqual(
      planRuns(2, 1, 1234, 1).map((r) => r.dir),
      ['t2-r1'],
    )
  })
})
