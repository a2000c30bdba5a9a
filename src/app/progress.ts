// Progress on stderr for long work: which target, which repeat, elapsed. Silent when stderr
// is not a TTY or when --json is set, so pipes and CI logs stay clean.

import {shortenMiddle, terminalWidth, wrapText} from '../report/layout.js'

export interface Progress {
  start(what: string): void
  done(what: string, seconds: number): void
  fail(what: string, line: string): void
  close(): void
}

export const silentProgress: Progress = {start() {}, done() {}, fail() {}, close() {}}

export function stderrProgress(enabled: boolean): Progress {
  if (!enabled) return silentProgress
  // one line each, cut to the terminal: a wrapped status line cannot be redrawn in place
  const fit = (line: string) => shortenMiddle(line, terminalWidth(process.env, process.stderr.columns) - 1)
  const t0 = Date.now()
  let timer: NodeJS.Timeout | undefined
  // runs in flight (targets side by side with --jobs, the explain stage's reruns): the status line
  // shows the one started last and how many others are running
  const inFlight = new Map<string, number>()
  const clear = () => process.stderr.write('\r\x1b[2K')
  const tick = () => {
    clear()
    const names = [...inFlight.keys()]
    const current = names.at(-1)
    if (current === undefined) return
    const others = names.length > 1 ? ` (+${names.length - 1} more)` : ''
    process.stderr.write(
      fit(
        `… ${current}${others} · ${((Date.now() - inFlight.get(current)!) / 1000).toFixed(0)} s (total ${((Date.now() - t0) / 1000).toFixed(0)} s)`,
      ),
    )
  }
  const settle = (what: string) => {
    inFlight.delete(what)
    if (inFlight.size === 0) clearInterval(timer)
    clear()
  }
  return {
    start(what) {
      inFlight.delete(what)
      inFlight.set(what, Date.now())
      tick()
      clearInterval(timer)
      timer = setInterval(tick, 1000)
      timer.unref()
    },
    done(what, seconds) {
      settle(what)
      process.stderr.write(`${fit(`✓ ${what} · ${seconds.toFixed(1)} s`)}\n`)
      if (inFlight.size > 0) tick()
    },
    fail(what, line) {
      settle(what)
      process.stderr.write(`${wrapText(`✗ ${what}: ${line}`, terminalWidth(process.env, process.stderr.columns), '  ')}\n`)
      if (inFlight.size > 0) tick()
    },
    close() {
      inFlight.clear()
      clearInterval(timer)
    },
  }
}
