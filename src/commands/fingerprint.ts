import os from 'node:os'
import path from 'node:path'
import {promises as fs} from 'node:fs'
import {table} from 'table'
import {ReproCommand} from '../cli/base.js'
import {targetFlags} from '../cli/flags.js'
import {fingerprintRun} from '../app/execute.js'
import {findPythonWithTorch, targetsFromFlags} from '../app/targets.js'
import {defaultProbeConfig} from '../core/config.js'
import {fingerprintHighlights} from '../core/fingerprint-summary.js'
import {ReproError} from '../errors.js'
import {safeText} from '../report/text.js'

export default class Fingerprint extends ReproCommand {
  static override summary = 'Capture the environment fingerprint of one target (no training; fast).'
  static override description =
    'What is in effect inside the target: python, OS and glibc, torch and its build configuration (oneDNN, BLAS, CPU capability), CUDA/cuDNN/driver and GPUs, the shared libraries actually loaded, live flags, thread counts, allowlisted env vars and installed distributions.'
  static override examples = ['<%= config.bin %> fingerprint --python /usr/bin/python3 --json']
  static override flags = {...targetFlags}

  async run() {
    const {flags} = await this.parse(Fingerprint)
    const given = (flags.python?.length ?? 0) + (flags.image?.length ?? 0)
    if (given > 1)
      throw new ReproError(`fingerprint takes one target, got ${given}`, {
        subject: 'fingerprint',
        hint: 'pass one --python PATH or --image NAME',
      })
    const argv = given ? this.argv : ['--python', await findPythonWithTorch()]
    const [spec] = await targetsFromFlags(argv, given ? flags : {...flags, python: [argv[1]!]})
    const work = await fs.mkdtemp(path.join(os.tmpdir(), 'repro-fingerprint-'))
    try {
      const config = {...defaultProbeConfig({file: 'data.safetensors', sha256: ''}), knobs: spec!.knobs}
      const {fingerprint, identity} = await fingerprintRun({
        target: spec!.target,
        config,
        data: null,
        outDir: work,
        timeoutMs: flags.timeout * 1000,
        label: spec!.target.name,
      })
      if (!this.jsonEnabled()) {
        const rows = [['field', 'value'], ...fingerprintHighlights(fingerprint).map(([k, v]) => [k, safeText(v, 100)])]
        this.log(`${spec!.target.name}\n${table(rows).trimEnd()}`)
      }
      return {target: spec!.target.name, identity, fingerprint}
    } finally {
      await fs.rm(work, {recursive: true, force: true})
    }
  }
}
