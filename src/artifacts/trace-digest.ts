// A compact digest of a whole trace for baseline reports: one sha256 per step (over its
// entries' names and digests, in order) and one over all steps. Two runs with equal roots are
// bitwise identical; the first step whose digest differs is where they diverge.

import {createHash} from 'node:crypto'
import type {TraceDigest} from '../core/report.js'
import type {Trace} from '../core/types.js'

export function traceDigest(trace: Trace): TraceDigest {
  const all = createHash('sha256')
  const steps = trace.steps.map((s) => {
    const h = createHash('sha256')
    for (const e of s.entries) h.update(e.name).update('\0').update(e.sha256).update('\n')
    const root = h.digest('hex')
    all.update(String(s.step)).update(':').update(root).update('\n')
    return {step: s.step, root: root.slice(0, 16)}
  })
  return {root: all.digest('hex'), steps}
}
