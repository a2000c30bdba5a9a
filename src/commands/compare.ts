import {Args} from '@oclif/core'
import {ReproCommand} from '../cli/base.js'
import {compareRunDirs} from '../app/compare.js'
import type {AuditReport} from '../core/report.js'
import {ReproError} from '../errors.js'
import {renderTerminal} from '../report/terminal.js'

export default class Compare extends ReproCommand {
  static override summary = 'Compare saved run directories offline (the first against each other).'
  static override description =
    'Reads run directories written by `repro run` (or the t*-r* directories of an audit), validates every file, and diffs traces, outcomes and fingerprints. Exit codes: 0 bitwise identical, 1 drift, 2 unreadable or invalid run directory (the others are still compared).'
  static override examples = ['<%= config.bin %> compare reports/run-a reports/run-b']
  static override strict = false
  static override args = {
    dirs: Args.string({description: 'Two or more run directories.', required: true}),
  }

  async run(): Promise<AuditReport> {
    const {argv} = await this.parse(Compare)
    const dirs = (argv as string[]).filter((a) => !a.startsWith('-'))
    if (dirs.length < 2)
      throw new ReproError(`compare needs at least two run directories, got ${dirs.length}`, {
        subject: 'compare',
        hint: 'pass two or more directories written by `repro run`',
      })
    const report = await compareRunDirs(dirs, ['repro', 'compare', ...this.argv].join(' '))
    if (!this.jsonEnabled()) this.log(renderTerminal(report).trimEnd())
    process.exitCode = report.verdict.exit_code
    return report
  }
}
