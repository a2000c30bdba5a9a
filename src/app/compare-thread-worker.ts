// The worker of compare-thread.ts: waits for a job on the shared counter, takes it from its port,
// runs compareF32Part and replies. It blocks in Atomics.wait between jobs (a pending
// Atomics.waitAsync would not keep a worker alive); the main thread unref's it, and node stops it
// when the process ends.

import {type MessagePort, receiveMessageOnPort, workerData} from 'node:worker_threads'
import {compareF32Part} from '../core/metrics.js'
import {collectGarbage} from '../env/gc.js'
import type {CompareJob, CompareReply} from './compare-thread.js'

const {ctl, port} = workerData as {ctl: Int32Array; port: MessagePort}

// The job's tensors arrive as views of their SharedArrayBuffers; a buffer is freed once no thread
// holds a view of it, and V8 does not collect for such buffers (src/env/gc.ts), so each job's views
// are collected once it is done (a minor collection of this small heap, well under 1 ms).

/** Takes and runs one job: its number, or null when its message is not there yet. */
function take(): number | null {
  const job = receiveMessageOnPort(port)?.message as CompareJob | undefined
  if (job === undefined) return null
  let reply: CompareReply
  try {
    reply = {job: job.job, part: compareF32Part(job.x, job.y, job.tol, job.begin, job.end, job.x.length)}
  } catch (err) {
    reply = {job: job.job, error: String(err)}
  }
  port.postMessage(reply)
  return job.job
}

Atomics.store(ctl, 1, 1)
let seen = 0
for (;;) {
  Atomics.wait(ctl, 0, seen)
  const posted = Atomics.load(ctl, 0)
  while (seen < posted) {
    const done = take()
    if (done === null) break // posted before its message was queued: the next wake-up takes it
    seen = done
    Atomics.store(ctl, 2, done)
    Atomics.notify(ctl, 2)
    collectGarbage('minor') // the job's views are out of scope here
  }
}
