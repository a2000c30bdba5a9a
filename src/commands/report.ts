import {promises as fs} from 'node:fs'
import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {ReproCommand} from '../cli/base.js'
import {ReproError} from '../errors.js'
import {REPORT_FORMATS, parseFormats, writeReportFiles} from '../app/report-files.js'
import {publishToGitHub} from '../report/github.js'
import {loadReport} from '../report/load.js'

export default class Report extends ReproCommand {
  static override summary = 'Re-render a saved report.json as Markdown, HTML, JUnit XML or JSON (no rerun).'
  static override description =
    'Reads a report.json written by `repro audit` (or `repro compare --json`), validates it, and writes report.md, report.html (self-contained: inline CSS and SVG charts, no scripts, no network), report.junit.xml and/or report.json. Exit codes: 0 written, 2 unreadable or invalid report, or a bad flag.'
  static override examples = [
    '<%= config.bin %> report reports/audit-20260101-120000/report.json',
    '<%= config.bin %> report report.json --format html --out site/',
    '<%= config.bin %> report report.json --format md --stdout >> "$GITHUB_STEP_SUMMARY"',
  ]
  static override args = {
    file: Args.string({description: 'The report.json to render.', required: true}),
  }
  static override flags = {
    format: Flags.string({description: 'Comma list of formats: md, html, junit, json.', default: 'md,html,junit'}),
    out: Flags.string({description: 'Directory for the rendered files. Default: the directory of FILE.'}),
    stdout: Flags.boolean({description: 'Print the one format given by --format to stdout instead of writing files.'}),
    github: Flags.boolean({
      description: 'In GitHub Actions: also append the Markdown to $GITHUB_STEP_SUMMARY and print annotations for failed checks.',
    }),
  }

  async run(): Promise<{files: string[]}> {
    const {args, flags} = await this.parse(Report)
    const formats = parseFormats(flags.format, 'report')
    const report = await loadReport(args.file)
    if (flags.github)
      await publishToGitHub(
        report,
        process.env,
        this.jsonEnabled() ? {appendFile: (f, t) => fs.appendFile(f, t), writeLine: (l) => process.stderr.write(`${l}\n`)} : undefined,
      )

    if (flags.stdout) {
      if (formats.length !== 1)
        throw new ReproError(`--stdout prints one format, got ${formats.length} (${formats.join(', ')})`, {
          subject: 'report',
          hint: 'pass a single --format, e.g. --format md --stdout',
        })
      if (this.jsonEnabled()) throw new ReproError('--stdout and --json both want stdout', {subject: 'report', hint: 'drop one of them'})
      process.stdout.write(await REPORT_FORMATS[formats[0]!].render(report))
      return {files: []}
    }

    const files = await writeReportFiles(report, path.resolve(flags.out ?? path.dirname(args.file)), formats)
    if (!this.jsonEnabled()) for (const f of files) this.log(`wrote ${f}`)
    return {files}
  }
}
