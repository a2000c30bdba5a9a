// Stored tensor values read on demand: a safetensors file is opened and its header and offsets
// validated up front, and an entry's bytes are read from the file only when a consumer asks for
// them (compare reads only entries whose digests differ), so an audit never holds a run's values.

import {closeSync, constants, fstatSync, openSync, readSync} from 'node:fs'
import {PARALLEL_MIN_ELEMENTS} from '../core/metrics.js'
import type {StoredValues, TensorValues} from '../core/types.js'
import {SharedBytes} from '../env/gc.js'
import {type ByteSource, openSafetensors, type SafetensorsFile} from './safetensors.js'

/**
 * An open file as a ByteSource: every `read` is one positioned read into a fresh buffer.
 * `onRead` (tests) sees every read's offset and length.
 */
export function fileByteSource(fd: number, byteLength: number, onRead?: (offset: number, length: number) => void): ByteSource {
  return {
    byteLength,
    read(offset, length) {
      onRead?.(offset, length)
      // a buffer of its own, not node's shared pool, so typed arrays view it at offset 0
      const out = valuesBuffer(length)
      let got = 0
      while (got < length) {
        const n = readSync(fd, out, got, length - got, offset + got)
        if (n === 0) break
        got += n
      }
      return got === length ? out : out.subarray(0, got)
    },
  }
}

/**
 * A buffer for `length` bytes of stored values: large ones in a SharedArrayBuffer, so that a
 * compare can split them with its second thread (src/core/metrics.ts, CompareHelper) without
 * copying them.
 */
export function valuesBuffer(length: number): Uint8Array {
  if (length < 4 * PARALLEL_MIN_ELEMENTS) return new Uint8Array(length)
  // V8 frees a dropped SharedArrayBuffer only at a collection its size does not trigger (env/gc.ts):
  // without these, a compare of a 1 GB pair held every pair it had read (peak RSS 559 MiB, not 262)
  shared.allocating(length)
  return new Uint8Array(new SharedArrayBuffer(length))
}

const shared = new SharedBytes()

/** Opens `file` for reading without following a symlink; its descriptor and size (fstat, so they agree). */
export function openRegularFile(file: string): {fd: number; size: number} | {notRegular: true} {
  // O_NONBLOCK: a FIFO put in the file's place must not hang the open (no effect on a regular file)
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  const stat = fstatSync(fd)
  if (!stat.isFile()) {
    closeSync(fd)
    return {notRegular: true}
  }
  return {fd, size: stat.size}
}

// The descriptor of a LazyStoredValues is closed when the map is collected (or at exit).
const closer = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd)
  } catch {
    // already closed
  }
})

/**
 * The entries of a validated safetensors file as a StoredValues map. `get` reads and decodes
 * the entry from the file each time (nothing is cached: the caller drops the values when it is
 * done with them); iterating reads one entry per step. `wrap` turns a read error into the
 * error the user sees (the same one an invalid file gives when it is opened).
 */
export class LazyStoredValues implements StoredValues {
  private constructor(
    private readonly file: SafetensorsFile,
    private readonly wrap: (e: unknown) => never,
  ) {}

  /** Validates the header of the file behind `fd` now; owns `fd` from here (closed when this map is collected). */
  static fromFile(
    fd: number,
    size: number,
    wrap: (e: unknown) => never,
    onRead?: (offset: number, length: number) => void,
  ): LazyStoredValues {
    let file: SafetensorsFile
    try {
      file = openSafetensors(fileByteSource(fd, size, onRead))
    } catch (e) {
      closeSync(fd)
      wrap(e)
    }
    const values = new LazyStoredValues(file, wrap)
    closer.register(values, fd)
    return values
  }

  get size(): number {
    return this.file.tensors.size
  }

  has(key: string): boolean {
    return this.file.tensors.has(key)
  }

  get(key: string): TensorValues | undefined {
    if (!this.file.tensors.has(key)) return undefined
    try {
      return this.file.read(key)
    } catch (e) {
      this.wrap(e)
    }
  }

  keys(): MapIterator<string> {
    return this.file.tensors.keys()
  }

  *entries(): MapIterator<[string, TensorValues]> {
    for (const key of this.file.tensors.keys()) yield [key, this.get(key)!]
  }

  *values(): MapIterator<TensorValues> {
    for (const key of this.file.tensors.keys()) yield this.get(key)!
  }

  [Symbol.iterator](): MapIterator<[string, TensorValues]> {
    return this.entries()
  }

  forEach(fn: (value: TensorValues, key: string, map: ReadonlyMap<string, TensorValues>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) fn.call(thisArg, value, key, this)
  }
}
