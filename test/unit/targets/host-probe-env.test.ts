import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {hostCacheKey} from '../../../src/app/audit.js'
import type {HostFingerprint} from '../../../src/env/host.js'
import {hostProbeEnv} from '../../../src/targets/target.js'

describe('the AVX2-host switch (REPRO_EMULATE_CPU)', () => {
  test('reaches every probe when set, nothing otherwise', () => {
    assert.deepEqual(hostProbeEnv({REPRO_EMULATE_CPU: 'avx2'}), {REPRO_EMULATE_CPU: 'avx2'})
    assert.deepEqual(hostProbeEnv({PATH: '/bin'}), {})
  })

  test('is part of the run cache key: an emulated run never serves a plain one', () => {
    const host = {cpu: {brand: 'x', flags: 'avx2'}, os: {kernel: 'k', arch: 'x64'}, gpus: []} as unknown as HostFingerprint
    const saved = process.env['REPRO_EMULATE_CPU']
    try {
      delete process.env['REPRO_EMULATE_CPU']
      const plain = hostCacheKey(host)
      process.env['REPRO_EMULATE_CPU'] = 'avx2'
      assert.notDeepEqual(hostCacheKey(host), plain)
      assert.equal(hostCacheKey(host)['emulate_cpu'], 'avx2')
    } finally {
      if (saved === undefined) delete process.env['REPRO_EMULATE_CPU']
      else process.env['REPRO_EMULATE_CPU'] = saved
    }
  })
})
