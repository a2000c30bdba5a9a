import {Flags} from '@oclif/core'
import path from 'node:path'
import {auditRequest} from '../app/audit-request.js'
import {type K8sDryRunResult, k8sDryRun} from '../app/k8s-dry-run.js'
import {type InputListing, listScriptInputs, renderInputListing, type ScriptRequest} from '../app/script-inputs.js'
import {targetOrder} from '../app/targets.js'
import {ReproCommand} from '../cli/base.js'
import {ReproError} from '../errors.js'
import {
  executorFlags,
  parseStoreSteps,
  parseWorkloads,
  scriptFlags,
  scriptRequest,
  targetFlags,
  timestamp,
  trainingFlags,
} from '../cli/flags.js'
import type {AuditReport} from '../core/report.js'
import {renderTerminal} from '../report/terminal.js'

export default class Audit extends ReproCommand {
  static override summary = 'Run every target × repeats, diff the training traces, and give a verdict.'
  static override description =
    `Each target trains the same seeded workloads on identical data — the tabular MLP by default; --workload cnn, lstm, attention or all for the canary suite — or runs your own training script (--script); repeats within a target and each target against the first are compared entry by entry along the whole training trace.
With no target, the host's python with torch is audited against itself (repeats) and against a thread-count variant.
Exit codes: 0 bitwise reproducible, 1 drift, 2 usage or environment error (other targets are still reported), 3 internal error.`
  static override examples = [
    '<%= config.bin %> audit',
    '<%= config.bin %> audit --python /usr/bin/python3 --python /usr/bin/python3 --repeats 2',
    '<%= config.bin %> audit --python /usr/bin/python3 --python /usr/bin/python3 \\\n    --set 2:threads=2',
    '<%= config.bin %> audit --image repro-fixture:bookworm --image repro-fixture:trixie',
    '<%= config.bin %> audit --image repro-fixture:bookworm --image repro-fixture:trixie \\\n    --workload all',
    '<%= config.bin %> audit --script train.py --include data --max-steps 20 \\\n    --image repro-fixture:bookworm --image repro-fixture:trixie',
    '<%= config.bin %> audit --script train.py --include data --list-inputs',
    '<%= config.bin %> audit --script train_ddp.py --script-nproc 2 --python /usr/bin/python3',
    '<%= config.bin %> audit --python .venv/bin/python --data train.csv --label target --json',
    '<%= config.bin %> audit --executor slurm --image repro-fixture:bookworm \\\n    --image repro-fixture:trixie --out reports/nightly --resume',
    '<%= config.bin %> audit --executor k8s --dry-run --image repro-fixture:bookworm \\\n    --image repro-fixture:trixie --jobs 2 --out k8s-audit',
  ]
  static override flags = {
    ...targetFlags,
    ...executorFlags,
    ...trainingFlags,
    ...scriptFlags,
    repeats: Flags.integer({
      description: 'Runs per target (repeats are compared with each other; their spread is the noise floor).',
      default: 2,
      min: 1,
      max: 50,
    }),
    seeds: Flags.integer({
      description:
        'Train every target with N seeds (seed, seed+1, …) and judge the accuracy difference against seed-to-seed variance (Welch, 95 % interval).',
      default: 1,
      min: 1,
      max: 100,
    }),
    explain: Flags.boolean({
      description:
        'When drift is found, rerun with each differing runtime knob aligned (then all together) to attribute it; --no-explain skips.',
      default: true,
      allowNo: true,
    }),
    'explain-budget': Flags.integer({
      description:
        'Most extra probe runs spent on explaining: counterfactual reruns, zoom reruns, op replays (an update or init replay costs 2, a forward replay 4, a backward replay 6, plus one a toggle, two for oneDNN off in both).',
      default: 12,
      min: 0,
      max: 100,
    }),
    jobs: Flags.integer({
      description:
        "Probe runs at once: the targets side by side, then the explain stage's reruns and op replays of every workload (GPU runs are still serialized per device). With --executor slurm, the throttle of each job array (--array=0-N%J).",
      default: 1,
      min: 1,
      max: 64,
    }),
    cache: Flags.boolean({
      description:
        'Reuse probe runs from the run cache (keyed by image ID or interpreter and its packages, probe, config, host); --no-cache always reruns.',
      default: true,
      allowNo: true,
    }),
    out: Flags.string({description: 'Directory for the runs and the reports. Default: reports/audit-<time>.'}),
    resume: Flags.boolean({
      description:
        "Continue an earlier audit into the same --out (interrupted, failed part-way or finished): each planned run whose directory holds a complete run made from the same inputs (target and image ID or interpreter, probe, config, data) is taken as it is, the others run (and, with --executor slurm, only they are submitted); explaining's reruns are taken the same way, its op replays run again.",
      default: false,
    }),
    format: Flags.string({
      description:
        'Report files written into --out: a comma list of json, md, html (self-contained, with charts), junit. Inside GitHub Actions the Markdown also goes to the step summary, with annotations.',
      default: 'json,md,html,junit',
    }),
  }

  async run(): Promise<AuditReport | InputListing | K8sDryRunResult> {
    const {flags, metadata} = await this.parse(Audit)
    if (flags.executor === 'k8s' && !flags['dry-run'])
      throw new ReproError('only the dry run exists: it writes the manifests, no cluster is driven yet', {
        subject: '--executor k8s',
        hint: 'add --dry-run to write the Indexed Jobs (docs/scale-out.md), or use --executor local or slurm',
      })
    if (flags.resume && flags.out === undefined)
      throw new ReproError('needs the --out DIR of the audit it resumes', {
        subject: '--resume',
        hint: "add --out DIR (the earlier audit's), or drop --resume to start a new audit",
      })
    if (flags.resume && flags.executor === 'k8s')
      throw new ReproError('the dry run runs nothing, so there is nothing to resume', {subject: '--resume', hint: 'drop --resume'})
    if (flags['dry-run'] && flags.executor !== 'k8s')
      throw new ReproError('it writes the Kubernetes manifests of --executor k8s, and nothing else', {
        subject: '--dry-run',
        hint: 'add --executor k8s, or drop --dry-run',
      })
    const script: ScriptRequest | undefined = scriptRequest(flags)
    const outDir = flags.out ?? path.join('reports', `audit-${timestamp()}`)
    if (flags['list-inputs']) {
      if (!script)
        throw new ReproError('--list-inputs lists the project copy of a script', {
          subject: '--list-inputs',
          hint: 'add --script PATH or --module NAME',
        })
      const listing = await listScriptInputs(script, path.resolve(outDir))
      if (!this.jsonEnabled()) this.log(renderInputListing(listing))
      return listing
    }
    const request = {
      refs: targetOrder(this.argv, flags),
      settings: {
        ...flags,
        limitsGiven: {memory: !metadata.flags['memory']?.setFromDefault, cpus: !metadata.flags['cpus']?.setFromDefault},
      },
      data: {csv: flags.data, label: flags.label, rows: flags.rows},
      workloads: parseWorkloads(flags.workload),
      ...(script ? {script} : {}),
      repeats: flags.repeats,
      seed: flags.seed,
      seeds: flags.seeds,
      epochs: flags.epochs,
      storeSteps: parseStoreSteps(flags['store-steps']),
      explainBudget: flags.explain ? flags['explain-budget'] : 0,
      jobs: flags.jobs,
      cache: flags.cache,
      timeoutSeconds: flags.timeout,
      outDir,
      resume: flags.resume,
      formats: flags.format,
      command: ['repro', 'audit', ...this.argv].join(' '),
      progress: this.wantsProgress(),
      jsonStdout: this.jsonEnabled(),
    }
    if (flags.executor === 'k8s') {
      const manifests = await k8sDryRun({
        ...request,
        k8s: {
          ...(flags['k8s-namespace'] ? {namespace: flags['k8s-namespace']} : {}),
          ...(flags['k8s-gpu-product'] ? {gpuProduct: flags['k8s-gpu-product']} : {}),
        },
      })
      if (!this.jsonEnabled())
        for (const b of manifests.batches)
          this.log(
            `${b.target}: ${b.cells.length} run(s) as Job ${b.name}: ${path.relative(process.cwd(), b.job)} (Pod template: ${path.relative(process.cwd(), b.pod)})`,
          )
      return manifests
    }
    const report = await auditRequest(request)
    if (!this.jsonEnabled()) this.log(renderTerminal(report, {width: this.terminalWidth()}).trimEnd())
    process.exitCode = report.verdict.exit_code
    return report
  }
}
