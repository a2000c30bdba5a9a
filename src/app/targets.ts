// Turns command-line target flags into target specs, and finds the embedded default: the
// host's own python with torch, audited against itself plus a thread-count variant.

import {DEFAULT_KNOBS, KnobError, knobsForTarget, parseKnobOverride, type KnobOverride} from '../core/config.js'
import type {Knobs} from '../core/types.js'
import {ReproError} from '../errors.js'
import {spawnCapped} from '../targets/process.js'
import {PythonTarget} from '../targets/python.js'
import type {AuditTargetSpec} from './audit.js'

export function parseOverrides(sets: string[] | undefined, targetCount: number): KnobOverride[] {
  return (sets ?? []).map((text) => {
    let o: KnobOverride
    try {
      o = parseKnobOverride(text)
    } catch (e) {
      if (e instanceof KnobError) throw new ReproError(e.message, {subject: '--set', hint: 'write --set [N:]key=value, e.g. --set 2:threads=2'})
      throw e
    }
    if (o.target !== null && o.target > targetCount) {
      throw new ReproError(`--set ${text} names target ${o.target}, but there are ${targetCount}`, {subject: '--set', hint: 'number targets in the order they are given, from 1'})
    }
    return o
  })
}

export function targetsFromFlags(pythons: string[], sets: string[] | undefined): AuditTargetSpec[] {
  const overrides = parseOverrides(sets, pythons.length)
  return pythons.map((p, i) => ({target: new PythonTarget(p), knobs: knobsForTarget({...DEFAULT_KNOBS, env: {}}, overrides, i + 1), role: 'target' as const}))
}

export const PYTHON_CANDIDATES = ['python3', '/usr/bin/python3', '/usr/local/bin/python3']

/** The first python (PATH first, then the system's) that can import torch. */
export async function findPythonWithTorch(candidates = PYTHON_CANDIDATES): Promise<string> {
  const tried: string[] = []
  for (const c of candidates) {
    const r = await spawnCapped(c, ['-c', 'import sys, torch; print(sys.executable)'], {env: {PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp'}, timeoutMs: 60_000}).catch(() => null)
    if (r && r.exitCode === 0 && r.stdout.trim()) return r.stdout.trim().split('\n').pop()!
    tried.push(c)
  }
  throw new ReproError(`no python with torch found (tried ${tried.join(', ')})`, {subject: 'audit', hint: 'install PyTorch (Debian: apt-get install python3-torch) or pass --python PATH'})
}

/** The embedded default: one python against itself, plus the same python with threads changed. */
export function defaultDemoTargets(python: string): AuditTargetSpec[] {
  const knobs: Knobs = {...DEFAULT_KNOBS, env: {}}
  return [
    {target: new PythonTarget(python), knobs, role: 'target'},
    {
      target: new PythonTarget(python),
      knobs: {...knobs, threads: 2},
      role: 'variant',
      // Flip the thread count relative to what the first run reported as its default.
      deriveKnobs: (first) => ({...knobs, threads: first['threads'] === 1 ? 2 : 1}),
    },
  ]
}
