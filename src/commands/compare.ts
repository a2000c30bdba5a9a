import {Args} from '@oclif/core'
import {ReproCommand} from '../cli/base.js'
import {compareRunDirs} from '../app/compare.js'
import type {AuditReport} from '../core/report.js'
import {renderTerminal} from '../report/terminal.js'

export default class Compare extends ReproCommand {
  static override summary = 'Compare saved run directories offline (the first against each other).'
  static override description =
    'Reads run directories written by `repro run` (or the t*-r* directories of an audit), or a folder `repro prepare` wrote once its run.sh ran (its runs in manifest order; or one of its run folders), validates every file, and diffs traces, outcomes and fingerprints. Exit codes: 0 bitwise identical, 1 drift, 2 unreadable or invalid run directory, or a prepared run that failed or has not run (the others are still compared).'
  static override examples = ['<%= config.bin %> compare reports/run-a reports/run-b', '<%= config.bin %> compare prepared']
  static override strict = false
  static override args = {
    dirs: Args.string({description: 'Two or more run directories, or a folder repro prepare wrote.', required: true}),
  }

  async run(): Promise<AuditReport> {
    const {argv} = await this.parse(Compare)
    const dirs = (argv as string[]).filter((a) => !a.startsWith('-'))
    const report = await compareRunDirs(dirs, ['repro', 'compare', ...this.argv].join(' '))
    if (!this.jsonEnabled()) this.log(renderTerminal(report).trimEnd())
    process.exitCode = report.verdict.exit_code
    return report
  }
}
