import path from 'node:path'
import {Flags} from '@oclif/core'
import {type PrepareResult, prepareRuns} from '../app/prepare.js'
import {targetOrder} from '../app/targets.js'
import {ReproCommand} from '../cli/base.js'
import {parseStoreSteps, parseWorkloads, scriptFlags, scriptRequest, targetFlags, trainingFlags} from '../cli/flags.js'

// the script flags of an audit, but for --list-inputs (`repro audit --list-inputs` lists the same copy)
const {'list-inputs': _listInputs, ...preparedScriptFlags} = scriptFlags

export default class Prepare extends ReproCommand {
  static override summary = 'Stage an audit’s runs in a folder, to run on a machine without node.js.'
  static override description =
    `The audit's own run matrix — its --python and --image targets × workloads × repeats (and --seeds) — each run staged as a folder with spec.json (repro.prepared/2, as a Slurm job is): the probe and inputs of a python run, or an image run's container options (the image inspected here, launched as a local run launches it) and inputs tar. manifest.json lists the runs; run.sh runs them one after the other with probe/node_runner.py (stdlib python; it starts each interpreter, or creates, feeds and removes each container with the engine there) and exits 1 if any failed. Bring the folder back and compare it: repro compare DIR.
--device auto means the CPU (this host's GPU says nothing about the machine that runs them: --device cuda for GPU runs). docs/scale-out.md describes the layout.`
  static override examples = [
    '<%= config.bin %> prepare --image repro-fixture:trixie --python /usr/bin/python3 \\\n    --repeats 1 --out prepared\nsh prepared/run.sh\n<%= config.bin %> compare prepared',
    '<%= config.bin %> prepare --python python3 --python python3 --set 2:tf32_matmul=true \\\n    --device cuda --workload all --out gpu-runs',
  ]
  static override flags = {
    ...targetFlags,
    ...trainingFlags,
    repeats: Flags.integer({description: 'Runs per target (as for an audit).', default: 2, min: 1, max: 50}),
    seeds: Flags.integer({
      description: 'Train every target with N seeds (seed, seed+1, …), as for an audit.',
      default: 1,
      min: 1,
      max: 100,
    }),
    ...preparedScriptFlags,
    out: Flags.string({description: 'Directory to write (manifest.json, run.sh, probe/, one folder per run).', required: true}),
  }

  async run(): Promise<PrepareResult> {
    const {flags} = await this.parse(Prepare)
    const script = scriptRequest(flags)
    const result = await prepareRuns({
      refs: targetOrder(this.argv, flags),
      settings: flags,
      data: {csv: flags.data, label: flags.label, rows: flags.rows},
      workloads: parseWorkloads(flags.workload),
      ...(script !== undefined ? {script} : {}),
      repeats: flags.repeats,
      seed: flags.seed,
      seeds: flags.seeds,
      epochs: flags.epochs,
      storeSteps: parseStoreSteps(flags['store-steps']),
      timeoutSeconds: flags.timeout,
      outDir: flags.out,
      command: ['repro', 'prepare', ...this.argv].join(' '),
    })
    if (!this.jsonEnabled()) {
      const relative = path.relative(process.cwd(), result.dir) || '.'
      const where = relative.startsWith('..') ? result.dir : relative
      this.log(`staged ${result.manifest.runs.length} run(s) in ${where} (manifest.json, run.sh); run them with: sh ${where}/run.sh`)
    }
    return result
  }
}
