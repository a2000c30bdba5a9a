// JUnit XML: every check the audit made is a testcase, so CI systems show which target or
// comparison failed. The checks themselves (reportChecks) also drive GitHub annotations.

import {describeFirst, type AuditReport, type PairRecord, type TargetRecord} from '../core/report.js'
import {DEFAULT_FP32_TOLERANCE} from '../core/types.js'
import {cleanText, escapeXml} from './escape.js'
import {formatNumber, formatSigned} from './text.js'

/**
 * A stored (entry, step) counts as drifted beyond tolerance when its max abs error exceeds the
 * fp32 atol: the report keeps max_abs and rel_l2 per worst entry, not the per-element verdict.
 */
export const LAYER_DRIFT_ATOL = DEFAULT_FP32_TOLERANCE.atol

export type CheckStatus = 'passed' | 'failed' | 'skipped'

export interface Check {
  classname: string
  name: string
  status: CheckStatus
  /** one line: why it failed or was skipped */
  message: string
  /** longer text: failure body, or system-out for a passing check */
  details: string
  properties: {name: string; value: string}[]
  seconds: number | null
  /** the target or comparison it belongs to, for annotation titles */
  subject: string
}

export interface CheckSuite {
  name: string
  checks: Check[]
}

function check(c: Partial<Check> & Pick<Check, 'classname' | 'name' | 'status' | 'subject'>): Check {
  return {message: '', details: '', properties: [], seconds: null, ...c}
}

function targetChecks(report: AuditReport, t: TargetRecord): Check[] {
  const subject = t.name
  const seconds = t.runs.reduce((s, r) => s + (Number.isFinite(r.seconds) ? r.seconds : 0), 0)
  const out: Check[] = []
  out.push(
    t.status === 'error'
      ? check({
          classname: 'repro.targets',
          name: `${t.name}: ran`,
          status: 'failed',
          subject,
          message: t.error?.line ?? 'the target could not be audited',
          details: t.error ? `${t.error.message}\nhint: ${t.error.hint}` : '',
          seconds,
        })
      : check({
          classname: 'repro.targets',
          name: `${t.name}: ran`,
          status: 'passed',
          subject,
          details: `${t.runs.length} run(s), val accuracy ${t.runs.map((r) => formatNumber(r.final.val_accuracy)).join(' / ')}`,
          seconds,
        }),
  )
  const repeats = report.comparisons.filter((c) => c.role === 'repeat' && c.a.target === t.index)
  const name = `${t.name}: reproducible across repeats`
  if (t.status === 'error')
    out.push(check({classname: 'repro.targets', name, status: 'skipped', subject, message: 'the target did not run'}))
  else if (repeats.length === 0)
    out.push(
      check({
        classname: 'repro.targets',
        name,
        status: 'skipped',
        subject,
        message: t.runs.length < 2 ? 'one run only (use --repeats 2 or more)' : 'no repeat comparison in the report',
      }),
    )
  else {
    const drifting = repeats.filter((c) => !c.divergence.bitwise_identical)
    out.push(
      drifting.length === 0
        ? check({classname: 'repro.targets', name, status: 'passed', subject, details: `${repeats.length + 1} repeats bitwise identical`})
        : check({
            classname: 'repro.targets',
            name,
            status: 'failed',
            subject,
            message: `${drifting.length} of ${repeats.length} repeat comparison(s) differ; first: ${describePair(drifting[0]!)}`,
            details: drifting.map(describePair).join('\n'),
          }),
    )
  }
  return out
}

function describePair(c: PairRecord): string {
  return `${c.a.name} vs ${c.b.name}: ${c.divergence.counts.differing}/${c.divergence.counts.entries} entries differ, first at ${describeFirst(c)}`
}

function comparisonChecks(c: PairRecord): Check[] {
  // a knob variant informs but never fails the audit (decideVerdict): its failures are skips
  const fail: CheckStatus = c.role === 'variant' ? 'skipped' : 'failed'
  const info = c.role === 'variant' ? 'informational knob variant: ' : ''
  const subject = `${c.workload ? `${c.workload}: ` : ''}${c.a.name} vs ${c.b.name}`
  const classname = c.role === 'variant' ? 'repro.variant' : 'repro.compare'
  const out: Check[] = []
  const d = c.divergence
  out.push(
    d.bitwise_identical
      ? check({
          classname,
          name: `${subject}: training trace bitwise identical`,
          status: 'passed',
          subject,
          details: `${d.counts.entries} entries identical`,
        })
      : check({
          classname,
          name: `${subject}: training trace bitwise identical`,
          status: fail,
          subject,
          message: `${info}${d.counts.differing}/${d.counts.entries} entries differ, first at ${describeFirst(c)}`,
          details: `${d.counts.beyond_tolerance} stored entries beyond tolerance; ${d.counts.differing_with_values} differing entries have stored values`,
        }),
  )
  const o = c.outcome
  const accName = `${subject}: validation accuracy equal`
  if (o.accuracy_delta === null)
    out.push(check({classname, name: accName, status: 'skipped', subject, message: 'accuracy missing on one side'}))
  else if (o.accuracy_delta === 0)
    out.push(
      check({
        classname,
        name: accName,
        status: 'passed',
        subject,
        details: `val accuracy ${formatNumber(o.val_accuracy_a)} on both; val loss Δ ${formatSigned(o.val_loss_delta)}`,
      }),
    )
  else
    out.push(
      check({
        classname,
        name: accName,
        status: fail,
        subject,
        message: `${info}val accuracy ${formatNumber(o.val_accuracy_a)} → ${formatNumber(o.val_accuracy_b)} (Δ ${formatSigned(o.accuracy_delta)})`,
      }),
    )

  const rows = c.fingerprint_changes
  out.push(
    check({
      classname,
      name: `${subject}: fingerprint changes`,
      status: 'passed',
      subject,
      details:
        rows.length === 0
          ? 'no fingerprint differences'
          : rows.map((r) => `${r.group} ${r.path}: ${cleanText(r.a, 200)} → ${cleanText(r.b, 200)}`).join('\n') +
            (c.fingerprint_changed > rows.length ? `\n… ${c.fingerprint_changed - rows.length} more` : ''),
      properties: [
        {name: 'fingerprint_changed', value: String(c.fingerprint_changed)},
        ...rows.slice(0, 50).map((r) => ({name: `fingerprint.${r.path}`, value: `${cleanText(r.a, 200)} → ${cleanText(r.b, 200)}`})),
      ],
    }),
  )
  for (const w of d.worst) {
    const beyond = !(w.max_abs <= LAYER_DRIFT_ATOL) // NaN counts as beyond
    const name = `${subject}: drift in ${w.name} at step ${w.step}`
    const numbers = `max abs ${formatNumber(w.max_abs)}, rel L2 ${formatNumber(w.rel_l2)} (${w.phase})`
    out.push(
      beyond
        ? check({
            classname,
            name,
            status: fail,
            subject,
            message: `${info}${w.name} at step ${w.step}: ${numbers}, above atol ${LAYER_DRIFT_ATOL.toExponential()}`,
          })
        : check({classname, name, status: 'passed', subject, details: `${numbers}, within atol ${LAYER_DRIFT_ATOL.toExponential()}`}),
    )
  }
  return out
}

/** Every check of the report, grouped into suites: the targets, then one suite per comparison. */
export function reportChecks(report: AuditReport): CheckSuite[] {
  const suites: CheckSuite[] = [{name: 'targets', checks: report.targets.flatMap((t) => targetChecks(report, t))}]
  for (const c of report.comparisons)
    if (c.role !== 'repeat')
      suites.push({name: `${c.workload ? `${c.workload}: ` : ''}${c.a.name} vs ${c.b.name}`, checks: comparisonChecks(c)})
  return suites
}

function seconds(x: number | null): string {
  return x === null || !Number.isFinite(x) ? '0' : x.toFixed(3)
}

function counts(checks: Check[]): string {
  const failed = checks.filter((c) => c.status === 'failed').length
  const skipped = checks.filter((c) => c.status === 'skipped').length
  const time = checks.reduce((s, c) => s + (c.seconds !== null && Number.isFinite(c.seconds) ? c.seconds : 0), 0)
  return `tests="${checks.length}" failures="${failed}" errors="0" skipped="${skipped}" time="${seconds(time)}"`
}

function testcase(c: Check, pad: string): string {
  const attrs = `classname="${escapeXml(c.classname, 200)}" name="${escapeXml(c.name, 1000)}" time="${seconds(c.seconds)}"`
  const body: string[] = []
  if (c.properties.length > 0)
    body.push(
      `${pad}  <properties>\n${c.properties.map((p) => `${pad}    <property name="${escapeXml(p.name, 1000)}" value="${escapeXml(p.value, 1000)}"/>`).join('\n')}\n${pad}  </properties>`,
    )
  if (c.status === 'failed')
    body.push(
      `${pad}  <failure message="${escapeXml(c.message, 2000)}" type="repro">${escapeXml(c.details || c.message, 64 * 1024, {keepNewlines: true})}</failure>`,
    )
  if (c.status === 'skipped') body.push(`${pad}  <skipped message="${escapeXml(c.message, 2000)}"/>`)
  if (c.status !== 'failed' && c.details)
    body.push(`${pad}  <system-out>${escapeXml(c.details, 64 * 1024, {keepNewlines: true})}</system-out>`)
  return body.length === 0 ? `${pad}<testcase ${attrs}/>` : `${pad}<testcase ${attrs}>\n${body.join('\n')}\n${pad}</testcase>`
}

export function renderJunit(report: AuditReport): string {
  const suites = reportChecks(report)
  const all = suites.flatMap((s) => s.checks)
  const stamp = escapeXml(report.created, 64)
  const out = ['<?xml version="1.0" encoding="UTF-8"?>', `<testsuites name="repro" ${counts(all)} timestamp="${stamp}">`]
  suites.forEach((s, i) => {
    out.push(`  <testsuite name="${escapeXml(s.name, 1000)}" id="${i}" ${counts(s.checks)} timestamp="${stamp}">`)
    if (i === 0) {
      out.push('    <properties>')
      const props: [string, string][] = [
        ['verdict', report.verdict.status],
        ['exit_code', String(report.verdict.exit_code)],
        ['headline', report.verdict.headline],
        ['command', report.command],
        ['repro_version', report.tool.version],
      ]
      for (const [name, value] of props) out.push(`      <property name="${name}" value="${escapeXml(value, 4000)}"/>`)
      out.push('    </properties>')
    }
    for (const c of s.checks) out.push(testcase(c, '    '))
    out.push('  </testsuite>')
  })
  out.push('</testsuites>')
  return `${out.join('\n')}\n`
}
