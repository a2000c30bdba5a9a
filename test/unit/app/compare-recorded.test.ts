// repro compare on the recorded run directories (fixtures/runs/cpu-*): no torch needed.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import {compareRunDirs} from '../../../src/app/compare.js'
import {ROOT} from '../report/sample.js'

const run = (name: string) => path.join(ROOT, 'fixtures', 'runs', name)

test('the same run recorded twice is bitwise identical; another thread count drifts; an incomplete directory is an error', async () => {
  const report = await compareRunDirs(
    [run('cpu-threads1'), run('cpu-threads1-rerun'), run('cpu-threads2'), run('incomplete')],
    'repro compare',
  )
  const [rerun, threads2] = report.comparisons
  assert.equal(rerun!.divergence.bitwise_identical, true)
  assert.equal(threads2!.divergence.bitwise_identical, false)
  assert.equal(threads2!.divergence.first_divergence?.step, 0)
  assert.ok(threads2!.fingerprint_changes.some((r) => r.path === 'threads.intra_op'))
  const incomplete = report.targets[3]!
  assert.equal(incomplete.status, 'error')
  assert.match(incomplete.error!.line, /tensors\.safetensors is missing|trace\.json .* is invalid/)
  assert.equal(report.verdict.exit_code, 2, 'an unreadable run is an environment error; the others are still compared')
})
