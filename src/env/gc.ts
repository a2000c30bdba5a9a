// A garbage collection on demand, for SharedArrayBuffers: V8 does not count their memory towards
// the pressure that starts a collection (ArrayBuffers it does), so a buffer nothing references
// any more stays allocated until a collection happens for other reasons. Measured on node 20:
// 20 unreferenced 100 MB SharedArrayBuffers in a row, peak RSS 1997 MB; with a minor collection
// after each (0.3-0.7 ms), 240 MB. Buffers that were alive at a minor collection are freed only by
// a full one (a compare allocates enough to see one while its pair is alive), hence both kinds. `gc` is node's own (--expose-gc), exposed to a fresh context
// only, so nothing else sees it.

import {setFlagsFromString} from 'node:v8'
import {runInNewContext} from 'node:vm'

type Gc = (opts?: {type: 'minor' | 'major'}) => void

let gc: Gc | null | undefined

/** Collects garbage: 'minor' (the young generation, < 1 ms) or 'major' (the whole heap). */
export function collectGarbage(type: 'minor' | 'major'): void {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gc = runInNewContext('gc') as Gc
    } catch {
      gc = null // not available here: memory is then freed when V8 collects on its own
    }
  }
  if (type === 'minor') gc?.({type})
  else gc?.() // a full collection (this V8 ignores {type: 'major'})
}

/**
 * Counts the SharedArrayBuffer bytes allocated and collects garbage as they add up: a minor
 * collection every `minorBytes` (the buffers dropped since, while they are young), a major one
 * every `majorBytes` (those that lived long enough to be promoted).
 */
export class SharedBytes {
  private sinceMinor = 0
  private sinceMajor = 0
  constructor(
    private readonly minorBytes = 32 * 2 ** 20,
    private readonly majorBytes = 128 * 2 ** 20,
  ) {}

  /** Call before allocating `length` shared bytes. */
  allocating(length: number): void {
    this.sinceMinor += length
    this.sinceMajor += length
    if (this.sinceMajor >= this.majorBytes) {
      collectGarbage('major')
      this.sinceMajor = this.sinceMinor = 0
    } else if (this.sinceMinor >= this.minorBytes) {
      collectGarbage('minor')
      this.sinceMinor = 0
    }
  }
}
