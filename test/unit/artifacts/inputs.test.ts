import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {encodeWorkloadData} from '../../../src/artifacts/inputs.js'
import {parseSafetensors} from '../../../src/artifacts/safetensors.js'
import {generateWorkloadData, WORKLOAD_NAMES} from '../../../src/core/workloads.js'

describe('workload data encoding (data.safetensors)', () => {
  test('tensor names, dtypes, shapes and metadata per workload, as docs/artifacts.md lists them', () => {
    const expected = {
      mlp: {
        tensors: {categorical: ['I64', [40, 2]], label: ['I64', [40]], numeric: ['F32', [40, 8]]},
        meta: ['categorical_columns', 'classes'],
      },
      cnn: {tensors: {images: ['U8', [40, 3, 32, 32]], label: ['I64', [40]]}, meta: ['classes', 'workload']},
      lstm: {tensors: {target: ['F32', [40]], windows: ['F32', [40, 16, 3]]}, meta: ['window', 'workload']},
      attention: {tensors: {label: ['I64', [40]], tokens: ['I64', [40, 16]]}, meta: ['classes', 'vocab', 'workload']},
    } as const
    for (const name of WORKLOAD_NAMES) {
      const {bytes, sha256} = encodeWorkloadData(generateWorkloadData(name, {rows: 40}))
      assert.match(sha256, /^[0-9a-f]{64}$/)
      const file = parseSafetensors(bytes)
      const got = Object.fromEntries([...file.tensors.values()].map((t) => [t.name, [t.dtype, t.shape]]))
      assert.deepEqual(got, expected[name].tensors, name)
      for (const key of [...expected[name].meta, 'source', 'generator']) assert.ok(key in file.metadata, `${name}: ${key}`)
      if (name !== 'mlp') assert.equal(file.metadata['workload'], name)
    }
  })

  test('the encoded default data is pinned per workload (the sha256 the probe verifies)', () => {
    const golden: Record<string, string> = {
      mlp: '1dc8b32822894fcec231a77120f36d18f9a443360e2b55e3cdd3a59ce27db12e',
      cnn: '7a8f3dfe7459517b73afcfdf0527534ba46d00afb10f32110df686a88718f636',
      lstm: 'd7d38a71599ade80d7d3b644d896af092db17ca09708b53be4f486f2611af4a7',
      attention: '00ea81dde8451541a1ea126233f56a78d232c07205c41e387cf35d4e90971dfc',
    }
    for (const name of WORKLOAD_NAMES) assert.equal(encodeWorkloadData(generateWorkloadData(name)).sha256, golden[name], name)
  })
})
