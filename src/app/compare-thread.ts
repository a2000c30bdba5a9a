// The second thread of a large float32 compare (src/core/metrics.ts, CompareHelper; issue 28):
// a worker thread (compare-thread-worker.ts) that runs compareF32Part on the upper half of a
// tensor pair while the calling thread does the lower half. compareValues stays synchronous: the
// job goes through a MessagePort read with receiveMessageOnPort, and the caller blocks on a
// shared counter (Atomics.wait) until the part is there. The tensors' SharedArrayBuffers are
// shared, not copied.
//
// Started on the first compare that can use it (that compare runs on one thread; the worker's
// start-up, ~30 ms, overlaps it), unref'd so it never holds the process open. Anything that goes
// wrong (the worker fails to start, throws, exits, or takes far longer than this thread took for
// its own half) makes the caller compute the part itself, and the helper is not used again.

import {performance} from 'node:perf_hooks'
import {MessageChannel, type MessagePort, receiveMessageOnPort, Worker} from 'node:worker_threads'
import {type CompareHelper, type F32Part, setCompareHelper} from '../core/metrics.js'
import type {Tolerance} from '../core/types.js'

/** ctl (Int32Array over a SharedArrayBuffer): [0] jobs posted, [1] 1 once the worker listens, [2] jobs done. */
export interface CompareJob {
  job: number
  x: Float32Array
  y: Float32Array
  tol: Tolerance
  begin: number
  end: number
}

export type CompareReply = {job: number; part: F32Part} | {job: number; error: string}

// beside this module: dist/src/app/ in tsc's output, dist/src/bundle/ in the bundle
// (scripts/bundle.mjs builds the worker there under this name)
const WORKER = new URL('./compare-thread-worker.js', import.meta.url)

export class CompareThread implements CompareHelper {
  private worker: Worker | null = null
  private port: MessagePort | null = null
  private failed = false
  private posted = 0
  private readonly ctl = new Int32Array(new SharedArrayBuffer(12))

  /** `worker`: the worker's module (tests: the bundled one). */
  constructor(private readonly workerUrl: URL = WORKER) {}

  start(x: Float32Array, y: Float32Array, tol: Tolerance, begin: number, end: number): (() => F32Part | null) | null {
    if (this.failed) return null
    if (this.worker === null) {
      this.spawn()
      return null
    }
    if (Atomics.load(this.ctl, 1) !== 1) return null
    const job = ++this.posted
    const msg: CompareJob = {job, x, y, tol, begin, end}
    this.port!.postMessage(msg)
    Atomics.store(this.ctl, 0, job)
    Atomics.notify(this.ctl, 0)
    const t0 = performance.now()
    return () => this.wait(job, t0)
  }

  /** Jobs posted to the worker so far (tests). */
  get jobs(): number {
    return this.posted
  }

  /** Resolves once the worker listens (tests; the product never waits for it). */
  async ready(): Promise<boolean> {
    if (this.worker === null && !this.failed) this.spawn()
    while (!this.failed && Atomics.load(this.ctl, 1) !== 1) await new Promise((r) => setTimeout(r, 5))
    return !this.failed
  }

  /** Ends the worker (tests). */
  async close(): Promise<void> {
    this.failed = true
    await this.worker?.terminate()
  }

  private spawn(): void {
    try {
      const {port1, port2} = new MessageChannel()
      this.port = port1
      // execArgv: none of node's own (an `-e`/`--input-type` of the parent is no worker's argument)
      this.worker = new Worker(this.workerUrl, {workerData: {ctl: this.ctl, port: port2}, transferList: [port2], execArgv: []})
      this.worker.unref()
      this.worker.on('error', () => this.fail())
      this.worker.on('exit', () => this.fail())
    } catch {
      this.fail()
    }
  }

  private wait(job: number, t0: number): F32Part | null {
    // this thread's own half took `own`; the worker's, as large, should take about as long
    const own = performance.now() - t0
    const limit = performance.now() + Math.max(1000, 20 * own)
    for (;;) {
      const done = Atomics.load(this.ctl, 2)
      if (done >= job) break
      if (this.failed || performance.now() > limit) {
        this.fail()
        return null
      }
      Atomics.wait(this.ctl, 2, done, 20)
    }
    const reply = receiveMessageOnPort(this.port!)?.message as CompareReply | undefined
    if (reply === undefined || reply.job !== job || 'error' in reply) {
      this.fail()
      return null
    }
    return reply.part
  }

  private fail(): void {
    if (this.failed) return
    this.failed = true
    void this.worker?.terminate()
  }
}

/** Registers a CompareThread as core's compare helper (the CLI's start-up; bench/compare-ts.mjs). */
export function useCompareThread(): void {
  setCompareHelper(new CompareThread())
}
