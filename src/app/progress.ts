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
  let current = ''
  let since = 0
  const clear = () => process.stderr.write('\r\x1b[2K')
  const tick = () => {
    clear()
    process.stderr.write(
      fit(`… ${current} · ${((Date.now() - since) / 1000).toFixed(0)} s (total ${((Date.now() - t0) / 1000).toFixed(0)} s)`),
    )
  }
  return {
    start(what) {
      current = what
      since = Date.now()
      tick()
      clearInterval(timer)
      timer = setInterval(tick, 1000)
      timer.unref()
    },
    done(what, seconds) {
      clearInterval(timer)
      clear()
      process.stderr.write(`${fit(`✓ ${what} · ${seconds.toFixed(1)} s`)}\n`)
    },
    fail(what, line) {
      clearInterval(timer)
      clear()
      process.stderr.write(`${wrapText(`✗ ${what}: ${line}`, terminalWidth(process.env, process.stderr.columns), '  ')}\n`)
    },
    close() {
      clearInterval(timer)
    },
  }
}
