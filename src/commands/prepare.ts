import {promises as fs} from 'node:fs'
import path from 'node:path'
import {Flags} from '@oclif/core'
import {type PrepareResult, parseVariants, prepareRuns, variantTargets} from '../app/prepare.js'
import {targetOrder} from '../app/targets.js'
import {ReproCommand} from '../cli/base.js'
import {parseStoreSteps, parseWorkloads, scriptFlags, scriptRequest, targetFlags, trainingFlags} from '../cli/flags.js'
import {ReproError} from '../errors.js'

// the script flags of an audit, but for --list-inputs (`repro audit --list-inputs` lists the same copy)
const {'list-inputs': _listInputs, ...preparedScriptFlags} = scriptFlags

export default class Prepare extends ReproCommand {
  static override summary = 'Stage an audit’s runs in a folder, to run on a machine without node.js.'
  static override description =
    `The audit's own run matrix — its --python and --image targets × workloads × repeats (and --seeds) — each run staged as a folder with spec.json (repro.prepared/2, as a Slurm job is): the probe and inputs of a python run, or an image run's container options (the image inspected here, launched as a local run launches it) and inputs tar. manifest.json lists the runs; run.sh runs them one after the other with probe/node_runner.py (stdlib python; it starts each interpreter, or creates, feeds and removes each container with the engine there) and exits 1 if any failed. Bring the folder back and compare it: repro compare DIR.
--device auto means the CPU (this host's GPU says nothing about the machine that runs them: --device cuda for GPU runs). docs/scale-out.md describes the layout.
--variants FILE (named knob variants, scripts/gpu/variants.json) stands for the targets: variant N is --python PYTHON (--variants-python, default python3) with its settings as --set N:…, its name kept in manifest.json (variant, on the target and on each run); scripts/gpu/run_variants.py runs such a folder N runs at a time.`
  static override examples = [
    '<%= config.bin %> prepare --image repro-fixture:trixie --python /usr/bin/python3 \\\n    --repeats 1 --out prepared\nsh prepared/run.sh\n<%= config.bin %> compare prepared',
    '<%= config.bin %> prepare --python python3 --python python3 --set 2:tf32_matmul=true \\\n    --device cuda --workload all --out gpu-runs',
    '<%= config.bin %> prepare --variants scripts/gpu/variants.json \\\n    --workload all --repeats 2 --out gpu-inputs',
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
    variants: Flags.string({
      description:
        'JSON file: a list of {"name": …, "set": ["key=value", …]} (the --set syntax of audit, without N:). Each variant is one --python target (--variants-python) with its settings; instead of --python and --image.',
      helpGroup: 'TARGETS',
    }),
    'variants-python': Flags.string({
      description: 'The interpreter of every --variants target, as the machine that runs them names it (default: python3).',
      helpGroup: 'TARGETS',
    }),
    out: Flags.string({description: 'Directory to write (manifest.json, run.sh, probe/, one folder per run).', required: true}),
  }

  async run(): Promise<PrepareResult> {
    const {flags} = await this.parse(Prepare)
    const script = scriptRequest(flags)
    if (flags['variants-python'] !== undefined && flags.variants === undefined)
      throw new ReproError('--variants-python names the interpreter of --variants targets; without --variants it would be ignored', {
        subject: 'prepare',
        hint: 'add --variants FILE, or name the interpreter with --python',
      })
    if (flags.variants !== undefined && (flags.python?.length || flags.image?.length))
      throw new ReproError('--variants stands for the targets; it does not go with --python or --image', {
        subject: 'prepare',
        hint: 'drop --python/--image (--variants-python names the variants’ interpreter), or drop --variants',
      })
    const variants =
      flags.variants === undefined ? null : await readVariants(flags.variants, flags['variants-python'] ?? 'python3', flags.set)
    const result = await prepareRuns({
      refs: variants ? variants.refs : targetOrder(this.argv, flags),
      settings: variants ? {...flags, set: variants.set} : flags,
      ...(variants ? {variants: variants.names} : {}),
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

/** `--variants FILE` as targets: each variant one python target with its settings. */
async function readVariants(file: string, python: string, set: string[] | undefined) {
  const text = await fs.readFile(file, 'utf8').catch(() => {
    throw new ReproError(`cannot read ${file}`, {subject: '--variants', hint: 'pass the path of a JSON file of variants'})
  })
  return variantTargets(parseVariants(text, file), python, set)
}
