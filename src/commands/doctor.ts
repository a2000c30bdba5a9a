import {ReproCommand} from '../cli/base.js'
import {doctor, type DoctorItem} from '../app/doctor.js'
import {renderDoctor} from '../report/doctor.js'

export default class Doctor extends ReproCommand {
  static override summary = 'What this host offers repro (engines, pythons with torch, GPUs) and the fixes.'
  static override description =
    'Container engines (and whether each starts repro’s hardened containers), pythons with torch, NVIDIA GPUs, the run cache — and how to get what is missing. Exit 0 when at least one target kind is usable (an engine that answers, or a python with torch), 2 otherwise.'
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json']

  async run(): Promise<{items: DoctorItem[]; usable: boolean}> {
    await this.parse(Doctor)
    const items = await doctor()
    const usable = items.some((i) => i.ok && (i.area === 'engine' || i.area === 'python'))
    if (!this.jsonEnabled()) this.log(renderDoctor(items, usable, this.terminalWidth()))
    process.exitCode = usable ? 0 : 2
    return {items, usable}
  }
}
