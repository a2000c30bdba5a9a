import {table} from 'table'
import {ReproCommand} from '../cli/base.js'
import {doctor, type DoctorItem} from '../app/doctor.js'
import {safeText} from '../report/text.js'

export default class Doctor extends ReproCommand {
  static override summary =
    'What this host offers repro: container engines, pythons with torch, NVIDIA GPUs — and how to get what is missing.'
  static override description =
    'Exit 0 when at least one target kind is usable (an engine that answers, or a python with torch), 2 otherwise.'
  static override examples = ['<%= config.bin %> doctor', '<%= config.bin %> doctor --json']

  async run(): Promise<{items: DoctorItem[]; usable: boolean}> {
    await this.parse(Doctor)
    const items = await doctor()
    const usable = items.some((i) => i.ok && (i.area === 'engine' || i.area === 'python'))
    if (!this.jsonEnabled()) {
      const rows = [
        ['', 'area', 'what', 'detail', 'fix'],
        ...items.map((i) => [i.ok ? '✔' : '✘', i.area, safeText(i.name, 40), safeText(i.detail, 400), safeText(i.hint ?? '', 400)]),
      ]
      // detail and fix wrap rather than cut: the fix is often a line to paste into a config file
      this.log(table(rows, {columns: {3: {width: 56, wrapWord: true}, 4: {width: 56, wrapWord: true}}}).trimEnd())
      this.log(
        usable
          ? 'repro can audit on this host.'
          : 'repro cannot audit anything here yet: install an engine or a python with torch (hints above).',
      )
    }
    process.exitCode = usable ? 0 : 2
    return {items, usable}
  }
}
