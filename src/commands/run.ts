import {Flags} from '@oclif/core'
import path from 'node:path'
import {type RunResult, runOne} from '../app/single.js'
import {targetOrder} from '../app/targets.js'
import {ReproCommand} from '../cli/base.js'
import {parseStoreSteps, parseWorkloads, targetFlags, timestamp, trainingFlags} from '../cli/flags.js'

export default class Run extends ReproCommand {
  static override summary = 'Run the probe in one target and write a run directory.'
  static override description =
    'The run directory (docs/artifacts.md) holds fingerprint.json, run.json, trace.json, tensors.safetensors and target.json; compare it later, anywhere, with `repro compare`.'
  static override examples = [
    '<%= config.bin %> run --python /usr/bin/python3 --out reports/run-a',
    '<%= config.bin %> run --python /usr/bin/python3 --set threads=2 --out reports/run-b',
  ]
  static override flags = {
    ...targetFlags,
    ...trainingFlags,
    out: Flags.string({description: 'Run directory to write. Default: reports/run-<time>.'}),
  }

  async run(): Promise<RunResult> {
    const {flags} = await this.parse(Run)
    const result = await runOne({
      refs: targetOrder(this.argv, flags),
      settings: flags,
      data: {csv: flags.data, label: flags.label, rows: flags.rows},
      workloads: parseWorkloads(flags.workload),
      seed: flags.seed,
      epochs: flags.epochs,
      storeSteps: parseStoreSteps(flags['store-steps']),
      timeoutSeconds: flags.timeout,
      outDir: flags.out ?? path.join('reports', `run-${timestamp()}`),
      progress: this.wantsProgress(),
    })
    const acc = result.final.val_accuracy ?? '—'
    if (!this.jsonEnabled()) this.log(`wrote ${result.dir} (${result.steps} steps, val accuracy ${acc}, ${result.seconds.toFixed(1)} s)`)
    return result
  }
}
