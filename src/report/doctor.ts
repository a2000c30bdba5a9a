// `repro doctor` in the terminal: a table where it fits with room for the fixes, otherwise one
// entry per thing checked, each wrapped to the terminal's width — the fix is often a line to
// paste into a config file, so it is never cut and words are not split where avoidable.

import {fitTable, wrapText} from './layout.js'
import {safeText} from './text.js'

export interface DoctorRow {
  area: string
  name: string
  ok: boolean
  detail: string
  hint: string | null
}

/** Below this width the table's fix column gets too narrow to keep a config line readable. */
const TABLE_MIN_WIDTH = 140

export function renderDoctor(items: DoctorRow[], usable: boolean, width: number): string {
  const verdict = usable
    ? 'repro can audit on this host.'
    : 'repro cannot audit anything here yet: install an engine or a python with torch (hints above).'
  if (width >= TABLE_MIN_WIDTH) {
    const rows = [
      ['', 'area', 'what', 'detail', 'fix'],
      ...items.map((i) => [i.ok ? '✔' : '✘', i.area, safeText(i.name, 40), safeText(i.detail, 400), safeText(i.hint ?? '', 400)]),
    ]
    return `${fitTable(rows, width).trimEnd()}\n${verdict}`
  }
  const out: string[] = []
  for (const i of items) {
    out.push(wrapText(`${i.ok ? '✔' : '✘'} ${i.area} ${safeText(i.name, 40)}: ${safeText(i.detail, 400)}`, width, '    '))
    if (i.hint) out.push(wrapText(`    fix: ${safeText(i.hint, 400)}`, width, '         '))
  }
  return `${out.join('\n')}\n\n${verdict}`
}
