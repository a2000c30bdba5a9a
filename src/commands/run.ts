import {Flags} from '@oclif/core'
import path from 'node:path'
import {ReproCommand} from '../cli/base.js'
import {parseStoreSteps, targetFlags, timestamp, trainingFlags} from '../cli/flags.js'
import {resolveData} from '../app/data.js'
import {trainRun} from '../app/execute.js'
import {ensureOutDir} from '../app/out-dir.js'
import {stderrProgress} from '../app/progress.js'
import {targetsFromFlags} from '../app/targets.js'
import {defaultProbeConfig} from '../core/config.js'
import {encodeData} from '../artifacts/inputs.js'
import {gitState} from '../env/git.js'
import {hostFingerprint} from '../env/host.js'
import {ReproError} from '../errors.js'

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

  async run() {
    const {flags} = await this.parse(Run)
    const given = (flags.python?.length ?? 0) + (flags.image?.length ?? 0)
    if (given !== 1)
      throw new ReproError(`run takes exactly one target, got ${given}`, {
        subject: 'run',
        hint: 'pass one --python PATH or --image NAME (use `repro audit` for several)',
      })
    const [spec] = await targetsFromFlags(this.argv, flags)
    const data = encodeData(await resolveData({csv: flags.data, label: flags.label, rows: flags.rows}))
    const config = {...defaultProbeConfig({file: 'data.safetensors', sha256: data.sha256}, flags.seed), knobs: spec!.knobs}
    config.train.epochs = flags.epochs
    config.trace.store_steps = parseStoreSteps(flags['store-steps'])
    const outDir = path.resolve(flags.out ?? path.join('reports', `run-${timestamp()}`))
    await ensureOutDir(outDir)
    const progress = stderrProgress(this.wantsProgress())
    const [host, git] = await Promise.all([hostFingerprint(), gitState()])
    progress.start(spec!.target.name)
    const {artifacts, seconds} = await trainRun({
      target: spec!.target,
      config,
      data: data.bytes,
      outDir,
      timeoutMs: flags.timeout * 1000,
      label: spec!.target.name,
      context: {host, git},
    })
    progress.done(spec!.target.name, seconds)
    const result = {
      dir: outDir,
      target: spec!.target.name,
      seconds,
      final: artifacts.outcome.final,
      steps: artifacts.outcome.steps,
      knobs_effective: artifacts.outcome.knobs_effective,
    }
    if (!this.jsonEnabled())
      this.log(
        `wrote ${outDir} (${artifacts.outcome.steps} steps, val accuracy ${artifacts.outcome.final.val_accuracy ?? '—'}, ${seconds.toFixed(1)} s)`,
      )
    return result
  }
}
