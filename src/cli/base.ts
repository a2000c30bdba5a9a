// The base every command extends: --json and --debug, and the exit-code table applied to
// errors — known ones print one line with a hint, unknown ones are internal (exit 3).

import {Command, Flags} from '@oclif/core'
import {useCompareThread} from '../app/compare-thread.js'
import {ExitCode, isReproError} from '../errors.js'
import {killAllChildren} from '../targets/process.js'
import {runFinishHooks, runInterruptHooks} from '../targets/cleanup.js'
import {renderJson} from '../report/json.js'
import {terminalWidth} from '../report/layout.js'

const DISK_FULL = new Set(['ENOSPC', 'EDQUOT'])

export abstract class ReproCommand extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    debug: Flags.boolean({description: 'Print stack traces for internal errors.', helpGroup: 'GLOBAL'}),
  }

  override async init(): Promise<void> {
    await super.init()
    useCompareThread() // large float32 compares use a second thread (started on first use)
    // Ctrl-C / SIGTERM: take every running probe down with us, then exit like a shell would.
    const stop = (signal: NodeJS.Signals) => {
      killAllChildren('SIGKILL')
      runInterruptHooks()
      process.stderr.write(`\nrepro: interrupted (${signal}); running probes were killed and their containers removed\n`)
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
  }

  /** Whatever the command kept for later (a target's idle containers) goes, also after an error. */
  override async finally(err: Error | undefined): Promise<void> {
    await runFinishHooks()
    return super.finally(err)
  }

  /** --json output keeps non-finite metrics as strings instead of oclif's lossy null. */
  override logJson(json: unknown): void {
    process.stdout.write(renderJson(json))
  }

  /** Columns to render for: COLUMNS when set (node itself ignores it), else stdout's, else 80. */
  protected terminalWidth(): number {
    return terminalWidth(process.env, process.stdout.columns)
  }

  /** Progress on stderr only for people: a TTY and no --json. */
  protected wantsProgress(): boolean {
    return Boolean(process.stderr.isTTY) && !this.jsonEnabled()
  }

  override async catch(err: Error & {oclif?: {exit?: number}}): Promise<void> {
    const debug = this.argv.includes('--debug')
    let code: number
    let line: string
    if (isReproError(err)) {
      code = err.code
      line = err.oneLine()
    } else if (DISK_FULL.has((err as NodeJS.ErrnoException).code ?? '')) {
      // A full disk is the host's condition, not a bug: name where, and the fix.
      const where = (err as NodeJS.ErrnoException).path
      code = ExitCode.UsageOrEnvironment
      line = `no space left on the device${where ? ` holding ${where}` : ''} — free disk space there, or write elsewhere (--out)`
    } else if (err.oclif?.exit !== undefined || /Flag|Arg|Parse/.test(err.constructor?.name ?? '')) {
      // oclif's parser: a bad or missing flag is a usage error.
      code = ExitCode.UsageOrEnvironment
      line = `${usageLine(err.message)} — see \`repro ${this.id ?? ''} --help\``
    } else {
      code = ExitCode.Internal
      line = `internal error: ${err.message.split('\n')[0]} — please report it; rerun with --debug for the stack trace`
    }
    process.exitCode = code
    if (this.jsonEnabled()) {
      this.logJson({error: {message: line, code, hint: isReproError(err) ? err.hint : null}})
    } else {
      process.stderr.write(`repro: ${line}\n`)
    }
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`)
  }
}

/**
 * oclif's parser error as one line (pure): its relationship errors (`--data` needs `--label`,
 * `--script` excludes `--module`) put the reason on the lines after a "The following error
 * occurred:" heading, and end with a help pointer this line gives its own way.
 */
export function usageLine(message: string): string {
  const lines = message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^The following errors? occurred:?$/.test(l) && !/^See more help with --help$/.test(l))
  return lines.join('; ') || message.trim()
}
