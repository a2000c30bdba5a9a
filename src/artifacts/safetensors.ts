// Reads and writes the safetensors container (docs/artifacts.md) without any dependency.
// The reader treats the file as hostile: every limit is checked before a byte is trusted.

import type {TensorValues} from '../core/types.js'

export const SAFETENSORS_LIMITS = {
  maxHeaderBytes: 16 * 1024 * 1024,
  maxTensors: 100_000,
  maxNameLength: 512,
  maxRank: 8,
}

const ITEM_SIZE: Record<string, number> = {F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1}

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8' | 'BOOL'

export interface TensorInfo {
  name: string
  dtype: SafetensorsDType
  shape: number[]
  begin: number
  end: number
}

export interface SafetensorsFile {
  metadata: Record<string, string>
  tensors: Map<string, TensorInfo>
  /** Decode one tensor, read from the source now, into values of its own; F16/BF16 are widened to float32. */
  read(name: string): TensorValues
}

/**
 * Where a safetensors file's bytes come from: a buffer in memory, or an open file that is read
 * one tensor at a time (src/artifacts/stored-values.ts), so a large file is never held whole.
 */
export interface ByteSource {
  /** the file's size: every offset in the header is checked against it before anything is read */
  readonly byteLength: number
  /** `length` bytes from `offset` in a fresh buffer of its own (byteOffset 0); shorter only if the source shrank */
  read(offset: number, length: number): Uint8Array
}

export class SafetensorsFormatError extends Error {
  override name = 'SafetensorsFormatError'
}

function fail(msg: string): never {
  throw new SafetensorsFormatError(msg)
}

// Control characters (C0, DEL, C1) are never legitimate in a tensor name and could forge
// terminal output, so names carrying them are rejected rather than cleaned.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point (they are stripped from untrusted text)
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** A safetensors file held in memory; tensors are copied out of it when read. */
export function parseSafetensors(buf: Uint8Array): SafetensorsFile {
  return openSafetensors({
    byteLength: buf.byteLength,
    read: (offset, length) => {
      const out = new Uint8Array(length)
      out.set(buf.subarray(offset, offset + length))
      return out
    },
  })
}

/**
 * Validates the header of the safetensors file behind `src` — every limit, every offset against
 * the file's size, no overlaps — and reads no tensor data: `read(name)` fetches one tensor's
 * bytes when asked.
 */
export function openSafetensors(src: ByteSource): SafetensorsFile {
  const size = src.byteLength
  if (size < 8) fail(`file is ${size} bytes, shorter than the 8-byte header length`)
  const lengthBytes = src.read(0, 8)
  if (lengthBytes.byteLength < 8) fail(`file is ${lengthBytes.byteLength} bytes, shorter than the 8-byte header length`)
  const headerLen = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8).getBigUint64(0, true)
  if (headerLen > BigInt(SAFETENSORS_LIMITS.maxHeaderBytes))
    fail(`header length ${headerLen} exceeds ${SAFETENSORS_LIMITS.maxHeaderBytes} bytes`)
  const n = Number(headerLen)
  if (8 + n > size) fail(`header length ${n} runs past the end of the ${size}-byte file (truncated?)`)
  const headerBytes = src.read(8, n)
  if (headerBytes.byteLength < n) fail(`header length ${n} runs past the end of the file (truncated?)`)
  let header: unknown
  try {
    header = JSON.parse(new TextDecoder('utf-8', {fatal: true}).decode(headerBytes))
  } catch {
    fail('header is not valid UTF-8 JSON')
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object')
  const dataStart = 8 + n
  const dataLen = size - dataStart
  const metadata: Record<string, string> = {}
  const tensors = new Map<string, TensorInfo>()
  const entries = Object.entries(header as Record<string, unknown>)
  if (entries.length > SAFETENSORS_LIMITS.maxTensors + 1) fail(`more than ${SAFETENSORS_LIMITS.maxTensors} tensors`)
  for (const [name, raw] of entries) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail('__metadata__ is not an object')
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`metadata value for ${JSON.stringify(k.slice(0, 64))} is not a string`)
        metadata[k] = v
      }
      continue
    }
    tensors.set(name, tensorInfo(name, raw, dataLen))
  }
  // Overlap check: sort by offset and require each tensor to start at or after the previous end.
  const ordered = [...tensors.values()].filter((t) => t.end > t.begin).sort((x, y) => x.begin - y.begin)
  for (let i = 1; i < ordered.length; i++) {
    if (ordered[i]!.begin < ordered[i - 1]!.end) fail(`tensors ${ordered[i - 1]!.name} and ${ordered[i]!.name} overlap`)
  }
  return {
    metadata,
    tensors,
    read(name: string): TensorValues {
      const info = tensors.get(name)
      if (!info) fail(`no tensor named ${JSON.stringify(name)}`)
      const bytes = src.read(dataStart + info.begin, info.end - info.begin)
      // the header was checked against the file's size when it was opened: a short read means
      // the file shrank since
      if (bytes.byteLength !== info.end - info.begin)
        fail(`tensor ${name}: data ends at ${info.end}, past the end of the file (truncated since it was opened?)`)
      return decode(info, bytes)
    },
  }
}

/** One header entry, checked: a sane name, a known dtype, a shape, offsets inside the data and matching the shape. */
function tensorInfo(name: string, raw: unknown, dataLen: number): TensorInfo {
  if (name.length === 0 || name.length > SAFETENSORS_LIMITS.maxNameLength) fail(`tensor name of length ${name.length} is out of bounds`)
  if (CONTROL.test(name)) fail(`tensor name ${JSON.stringify(name.slice(0, 64))} contains control characters`)
  if (typeof raw !== 'object' || raw === null) fail(`tensor ${name}: entry is not an object`)
  const {dtype, shape, data_offsets: offsets} = raw as Record<string, unknown>
  if (typeof dtype !== 'string' || !(dtype in ITEM_SIZE)) fail(`tensor ${name}: unknown dtype ${JSON.stringify(dtype)}`)
  if (!Array.isArray(shape) || shape.length > SAFETENSORS_LIMITS.maxRank)
    fail(`tensor ${name}: shape is not a list of at most ${SAFETENSORS_LIMITS.maxRank} dims`)
  let elements = 1
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      fail(`tensor ${name}: dimension ${JSON.stringify(d)} is not a non-negative integer`)
    elements *= d
  }
  if (!Array.isArray(offsets) || offsets.length !== 2) fail(`tensor ${name}: data_offsets is not [begin, end]`)
  const [begin, end] = offsets as unknown[]
  if (
    typeof begin !== 'number' ||
    typeof end !== 'number' ||
    !Number.isSafeInteger(begin) ||
    !Number.isSafeInteger(end) ||
    begin < 0 ||
    end < begin
  ) {
    fail(`tensor ${name}: data_offsets ${JSON.stringify(offsets)} are invalid`)
  }
  if (end > dataLen) fail(`tensor ${name}: data ends at ${end}, past the ${dataLen}-byte data buffer (truncated?)`)
  const expected = elements * ITEM_SIZE[dtype]!
  if (end - begin !== expected) fail(`tensor ${name}: ${end - begin} bytes for shape [${shape.join(', ')}] ${dtype}, expected ${expected}`)
  return {name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end}
}

function decode(info: TensorInfo, raw: Uint8Array): TensorValues {
  // Typed arrays need aligned offsets; a ByteSource hands out buffers of their own at offset 0,
  // so the copy is only for a source that does not.
  const bytes = raw.byteOffset % 8 === 0 ? raw : new Uint8Array(raw)
  const {buffer, byteOffset, byteLength} = bytes
  const shape = info.shape
  switch (info.dtype) {
    case 'F64':
      return {dtype: 'float64', shape, data: new Float64Array(buffer, byteOffset, byteLength / 8)}
    case 'F32':
      return {dtype: 'float32', shape, data: new Float32Array(buffer, byteOffset, byteLength / 4)}
    case 'I64':
      return {dtype: 'int64', shape, data: new BigInt64Array(buffer, byteOffset, byteLength / 8)}
    case 'I32':
      return {dtype: 'int32', shape, data: new Int32Array(buffer, byteOffset, byteLength / 4)}
    case 'U8':
      return {dtype: 'uint8', shape, data: bytes}
    case 'BOOL':
      return {dtype: 'bool', shape, data: bytes}
    case 'F16':
      return {dtype: 'float32', shape, data: widenHalf(bytes, halfToFloat)}
    case 'BF16':
      return {dtype: 'float32', shape, data: widenHalf(bytes, bfloat16ToFloat)}
  }
}

function widenHalf(bytes: Uint8Array, conv: (bits: number) => number): Float32Array {
  const out = new Float32Array(bytes.byteLength / 2)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < out.length; i++) out[i] = conv(view.getUint16(2 * i, true))
  return out
}

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

function bfloat16ToFloat(bits: number): number {
  u32[0] = bits << 16
  return f32[0]!
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const frac = h & 0x3ff
  if (exp === 0) return sign * frac * 2 ** -24
  if (exp === 0x1f) return frac ? NaN : sign * Infinity
  return sign * (1 + frac / 1024) * 2 ** (exp - 15)
}

export interface TensorToWrite {
  dtype: SafetensorsDType
  shape: number[]
  data: ArrayBufferView
}

/** Serialize tensors in key order without gaps, header padded with spaces to 8 bytes. */
export function writeSafetensors(tensors: Record<string, TensorToWrite>, metadata?: Record<string, string>): Buffer {
  const names = Object.keys(tensors).sort()
  const header: Record<string, unknown> = {}
  if (metadata) header['__metadata__'] = metadata
  let offset = 0
  for (const name of names) {
    const t = tensors[name]!
    const size = t.data.byteLength
    const expected = t.shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[t.dtype]!
    if (size !== expected) throw new Error(`tensor ${name}: ${size} bytes for shape [${t.shape.join(', ')}] ${t.dtype}`)
    header[name] = {dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size]}
    offset += size
  }
  let json = JSON.stringify(header)
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8
  json += ' '.repeat(pad)
  const headerBytes = Buffer.from(json, 'utf8')
  const out = Buffer.alloc(8 + headerBytes.byteLength + offset)
  out.writeBigUInt64LE(BigInt(headerBytes.byteLength), 0)
  headerBytes.copy(out, 8)
  let pos = 8 + headerBytes.byteLength
  for (const name of names) {
    const d = tensors[name]!.data
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength)
    out.set(bytes, pos)
    pos += bytes.byteLength
  }
  return out
}
