import {type FingerprintResult, fingerprintOne} from '../app/single.js'
import {targetOrder} from '../app/targets.js'
import {ReproCommand} from '../cli/base.js'
import {targetFlags} from '../cli/flags.js'
import {fingerprintHighlights} from '../core/fingerprint-summary.js'
import {fitTable} from '../report/layout.js'
import {safeText} from '../report/text.js'

export default class Fingerprint extends ReproCommand {
  static override summary = 'Capture the environment fingerprint of one target (no training; fast).'
  static override description =
    'What is in effect inside the target: python, OS and glibc, torch and its build configuration (oneDNN, BLAS, CPU capability), CUDA/cuDNN/driver and GPUs, the shared libraries actually loaded, live flags, thread counts, allowlisted env vars and installed distributions.'
  static override examples = ['<%= config.bin %> fingerprint --python /usr/bin/python3 --json']
  static override flags = {...targetFlags}

  async run(): Promise<FingerprintResult> {
    const {flags} = await this.parse(Fingerprint)
    const result = await fingerprintOne(targetOrder(this.argv, flags), flags, flags.timeout)
    if (!this.jsonEnabled()) {
      const rows = [['field', 'value'], ...fingerprintHighlights(result.fingerprint).map(([k, v]) => [k, safeText(v, 100)])]
      this.log(`${result.target}\n${fitTable(rows, this.terminalWidth()).trimEnd()}`)
    }
    return result
  }
}
