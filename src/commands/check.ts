import {Flags} from '@oclif/core'
import path from 'node:path'
import {checkRequest} from '../app/check.js'
import {ReproCommand} from '../cli/base.js'
import {timestamp} from '../cli/flags.js'
import type {CheckReport} from '../core/check.js'
import {recordStartup, timingsEnabled, timingsTable} from '../env/timings.js'

export default class Check extends ReproCommand {
  static override summary = "Pre-merge gate: the repo's audit held against a baseline report and a policy."
  static override description =
    `Reads repro.config.json (or the "repro" key of package.json): targets, probe settings, repeats/seeds and a policy (accuracy tolerance, reproducibility, which fingerprint changes fail). The baseline is a report file (--baseline, default from the config) or that file at a git ref (--baseline-ref origin/main). Runs are cached by image ID or interpreter, probe, config and host, so an unchanged check takes about half a second (REPRO_TIMINGS=1 prints where the time goes).
Writes check.md (also to the GitHub step summary, with annotations, inside Actions), check.json and the audit's reports into --out.
Exit codes: 0 within policy (or baseline updated), 1 beyond policy, 2 usage or environment error, 3 internal error.`
  static override examples = [
    '<%= config.bin %> check --update-baseline',
    '<%= config.bin %> check --baseline-ref origin/main',
    '<%= config.bin %> check --baseline reports/baseline.json --json',
  ]
  static override flags = {
    config: Flags.string({description: 'Config file. Default: ./repro.config.json, else the "repro" key of ./package.json.'}),
    baseline: Flags.string({description: 'Baseline report file (relative to the config). Default: the config\'s "baseline".'}),
    'baseline-ref': Flags.string({
      description: 'Read the baseline from this git ref instead (git show <ref>:<baseline path>).',
      exclusive: ['update-baseline'],
    }),
    'update-baseline': Flags.boolean({description: 'Run the audit and write its report as the new baseline (then commit it).'}),
    out: Flags.string({description: 'Directory for check.md, check.json and the audit reports. Default: reports/check-<time>.'}),
    jobs: Flags.integer({description: 'Targets run concurrently (GPU targets serialized per device).', default: 1, min: 1, max: 64}),
    cache: Flags.boolean({description: 'Reuse cached probe runs; --no-cache always reruns.', default: true, allowNo: true}),
  }

  async run(): Promise<CheckReport> {
    recordStartup()
    const {flags} = await this.parse(Check)
    const {report, markdown, outDir} = await checkRequest({
      configFile: flags.config,
      baselineFile: flags.baseline,
      baselineRef: flags['baseline-ref'],
      updateBaseline: flags['update-baseline'],
      outDir: flags.out ?? path.join('reports', `check-${timestamp()}`),
      cache: flags.cache,
      jobs: flags.jobs,
      progress: this.wantsProgress(),
      jsonStdout: this.jsonEnabled(),
      command: ['repro', 'check', ...this.argv].join(' '),
    })
    if (!this.jsonEnabled()) this.log(`${markdown.trimEnd()}\n\nReports: ${outDir}`)
    // REPRO_TIMINGS=1: where the time went, on stderr (docs/ci.md)
    if (timingsEnabled()) process.stderr.write(timingsTable())
    process.exitCode = report.exit_code
    return report
  }
}
