import {promises as fs} from 'node:fs'
import {Flags} from '@oclif/core'
import {type PreparedRun, parseVariants, prepareRuns} from '../app/prepare.js'
import {ReproCommand} from '../cli/base.js'
import {parseStoreSteps, parseWorkloads, trainingFlags} from '../cli/flags.js'
import {ReproError} from '../errors.js'

export default class Prepare extends ReproCommand {
  static override summary = 'Write the probe inputs for variants × workloads × repeats, without running them.'
  static override description =
    'For a machine where repro itself does not run (a GPU box with python and torch only): each run directory gets its config.json (the data shared per workload, hash-verified by the probe), manifest.json lists the runs, run.sh runs them with `python3 -m repro_probe train`. Bring the run directories back and compare them with `repro compare`.'
  static override examples = ['<%= config.bin %> prepare --variants gpu-variants.json --workload all --repeats 2 \\\n    --out gpu-inputs']
  static override flags = {
    variants: Flags.string({
      description: 'JSON file: a list of {"name": …, "set": ["key=value", …]} (the --set syntax of audit).',
      required: true,
    }),
    repeats: Flags.integer({description: 'Runs of each variant and workload.', default: 2, min: 1, max: 50}),
    ...trainingFlags,
    out: Flags.string({description: 'Directory to write.', required: true}),
  }

  async run(): Promise<{dir: string; runs: PreparedRun[]}> {
    const {flags} = await this.parse(Prepare)
    const text = await fs.readFile(flags.variants, 'utf8').catch(() => {
      throw new ReproError(`cannot read ${flags.variants}`, {subject: '--variants', hint: 'pass the path of a JSON file of variants'})
    })
    const result = await prepareRuns({
      variants: parseVariants(text, flags.variants),
      workloads: parseWorkloads(flags.workload),
      repeats: flags.repeats,
      seed: flags.seed,
      epochs: flags.epochs,
      storeSteps: parseStoreSteps(flags['store-steps']),
      data: {csv: flags.data, label: flags.label, rows: flags.rows},
      outDir: flags.out,
    })
    if (!this.jsonEnabled()) this.log(`wrote ${result.runs.length} run(s) into ${result.dir} (manifest.json, run.sh)`)
    return result
  }
}
