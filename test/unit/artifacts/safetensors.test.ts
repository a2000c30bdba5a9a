import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {parseSafetensors, writeSafetensors, SafetensorsFormatError} from '../../../src/artifacts/safetensors.js'

function fileWithHeader(header: unknown, dataBytes = 0): Buffer {
  const json = Buffer.from(JSON.stringify(header))
  const out = Buffer.alloc(8 + json.length + dataBytes)
  out.writeBigUInt64LE(BigInt(json.length), 0)
  json.copy(out, 8)
  return out
}

describe('safetensors', () => {
  test('round-trips every dtype with metadata, header padded to 8 bytes', () => {
    const buf = writeSafetensors(
      {
        a: {dtype: 'F32', shape: [2, 2], data: new Float32Array([1, -0, Infinity, NaN])},
        b: {dtype: 'F64', shape: [], data: new Float64Array([0.1])},
        c: {dtype: 'I64', shape: [3], data: new BigInt64Array([1n, -2n, 3n])},
        e: {dtype: 'I32', shape: [0], data: new Int32Array(0)},
      },
      {source: 'test'},
    )
    assert.equal(Number(buf.readBigUInt64LE(0)) % 8, 0)
    const f = parseSafetensors(buf)
    assert.deepEqual(f.metadata, {source: 'test'})
    const a = f.read('a')
    assert.equal(a.dtype, 'float32')
    assert.deepEqual(a.shape, [2, 2])
    assert.ok(Object.is(a.data[1], -0))
    assert.equal(a.data[2], Infinity)
    assert.ok(Number.isNaN(a.data[3] as number))
    assert.equal(f.read('b').data[0], 0.1)
    assert.deepEqual([...(f.read('c').data as BigInt64Array)], [1n, -2n, 3n])
    assert.equal(f.read('e').data.length, 0)
  })

  test('widens F16 and BF16 to float32', () => {
    // F16: 1.0 = 0x3c00, -2.0 = 0xc000, smallest subnormal = 0x0001; BF16: 1.0 = 0x3f80
    const half = new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00])
    const bf = new Uint16Array([0x3f80, 0xc040])
    const f = parseSafetensors(writeSafetensors({h: {dtype: 'F16', shape: [4], data: half}, b: {dtype: 'BF16', shape: [2], data: bf}}))
    assert.deepEqual([...(f.read('h').data as Float32Array)], [1, -2, 2 ** -24, Infinity])
    assert.deepEqual([...(f.read('b').data as Float32Array)], [1, -3])
  })

  const hostile: [string, () => Buffer, RegExp][] = [
    ['shorter than 8 bytes', () => Buffer.alloc(5), /shorter than/],
    ['header length past the end (truncated)', () => fileWithHeader({}).subarray(0, 9), /past the end/],
    [
      'huge header length',
      () => {
        const b = Buffer.alloc(16)
        b.writeBigUInt64LE(2n ** 40n, 0)
        return b
      },
      /exceeds/,
    ],
    ['header not an object', () => fileWithHeader([1, 2]), /not a JSON object/],
    ['unknown dtype', () => fileWithHeader({x: {dtype: 'F128', shape: [1], data_offsets: [0, 16]}}, 16), /unknown dtype/],
    ['negative dim', () => fileWithHeader({x: {dtype: 'F32', shape: [-1], data_offsets: [0, 4]}}, 4), /non-negative integer/],
    ['size does not match shape', () => fileWithHeader({x: {dtype: 'F32', shape: [3], data_offsets: [0, 8]}}, 8), /expected 12/],
    [
      'data past the buffer (truncated data)',
      () => fileWithHeader({x: {dtype: 'F32', shape: [4], data_offsets: [0, 16]}}, 8),
      /past the 8-byte data buffer/,
    ],
    [
      'overlapping tensors',
      () => fileWithHeader({x: {dtype: 'F32', shape: [2], data_offsets: [0, 8]}, y: {dtype: 'F32', shape: [2], data_offsets: [4, 12]}}, 12),
      /overlap/,
    ],
    [
      'control characters in a name',
      () => fileWithHeader({'a\u001b[31m': {dtype: 'U8', shape: [1], data_offsets: [0, 1]}}, 1),
      /control characters/,
    ],
    ['metadata value not a string', () => fileWithHeader({__metadata__: {a: 1}}), /not a string/],
  ]
  for (const [what, make, message] of hostile) {
    test(`rejects ${what}`, () => {
      assert.throws(
        () => parseSafetensors(make()),
        (e: unknown) => e instanceof SafetensorsFormatError && message.test((e as Error).message),
      )
    })
  }

  test('a file truncated anywhere is rejected, never misread', () => {
    const full = writeSafetensors({w: {dtype: 'F32', shape: [16], data: new Float32Array(16).fill(1)}})
    for (let cut = 0; cut < full.length; cut += 7) {
      assert.throws(() => parseSafetensors(full.subarray(0, cut)), SafetensorsFormatError, `cut at ${cut}`)
    }
  })
})
