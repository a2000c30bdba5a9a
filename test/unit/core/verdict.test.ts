import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {decideVerdict} from '../../../src/core/report.js'
import {sampleReport} from '../report/sample.js'

describe('the verdict', () => {
  test('one target run once claims nothing about reproducibility (it used to say "bitwise reproducible: 0 comparison(s)")', () => {
    const ok = sampleReport().targets.find((t) => t.status === 'ok')!
    const v = decideVerdict([ok], [])
    assert.equal(v.exit_code, 0)
    assert.match(v.headline, /^ran, nothing compared: 1 target\(s\), one run each — add --repeats 2/)
    assert.doesNotMatch(v.headline, /bitwise/)
  })
})
