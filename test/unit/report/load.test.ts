// Loading a saved report: size cap, JSON, schema, non-finite numbers, one-line errors.
import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync, truncateSync, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {renderJson} from '../../../src/report/json.js'
import {loadReport, MAX_REPORT_BYTES, parseReport} from '../../../src/report/load.js'
import {ReproError} from '../../../src/errors.js'
import {ROOT, sampleReport} from './sample.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'repro-load-'))
function file(name: string, text: string): string {
  const p = path.join(dir, name)
  writeFileSync(p, text)
  return p
}

async function rejects(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof ReproError)
    assert.equal(e.code, 2)
    assert.match(e.oneLine(), re)
    assert.doesNotMatch(e.oneLine(), /\n/)
    return true
  })
}

describe('loadReport', () => {
  test('round trip: non-finite numbers come back as numbers, the JSON re-renders byte-identically', async () => {
    const text = renderJson(sampleReport())
    assert.match(text, /"max_abs": "Infinity"/)
    assert.match(text, /"rel_l2": "NaN"/)
    const r = await loadReport(file('ok.json', text))
    const worst = r.comparisons[2]!.divergence.worst
    assert.equal(worst[2]!.max_abs, Infinity)
    assert.ok(Number.isNaN(worst[2]!.rel_l2))
    assert.equal(renderJson(r), text)
  })
  test('fingerprint strings that look like numbers stay strings', async () => {
    const rep = sampleReport()
    rep.comparisons[2]!.fingerprint_changes[0]!.a = 'NaN'
    const r = parseReport(renderJson(rep), 'x.json')
    assert.equal(r.comparisons[2]!.fingerprint_changes[0]!.a, 'NaN')
  })
  test('unknown fields pass through (newer reports)', () => {
    const rep = {...sampleReport(), future: {x: 1}} as Record<string, unknown>
    const r = parseReport(renderJson(rep), 'x.json') as unknown as Record<string, unknown>
    assert.deepEqual(r['future'], {x: 1})
  })
  test('every example report loads', async () => {
    for (const c of ['threads-drift', 'reproducible', 'incomplete-run', 'audit-threads']) {
      const p = path.join(ROOT, 'reports/examples', c, 'report.json')
      assert.equal(renderJson(await loadReport(p)), readFileSync(p, 'utf8'))
    }
  })
  test('missing file, directory, bad JSON, an error result, wrong schema, invalid field', async () => {
    await rejects(loadReport(path.join(dir, 'nope.json')), /nope\.json: no such file — pass a report\.json/)
    await rejects(loadReport(dir), /is a directory|is not a regular file/)
    await rejects(loadReport(file('bad.json', '{"schema": ')), /bad\.json: is not valid JSON/)
    await rejects(loadReport(file('err.json', '{"error": {"message": "x"}}')), /holds an error result from repro, not a report/)
    await rejects(loadReport(file('v2.json', '{"schema": "repro.report/2"}')), /schema repro\.report\/2/)
    const rep = JSON.parse(renderJson(sampleReport()))
    rep.targets[1].runs[0].seconds = 'fast'
    await rejects(
      loadReport(file('field.json', JSON.stringify(rep))),
      /field\.json: is not a valid repro report: targets\[1\]\.runs\[0\]\.seconds: /,
    )
  })
  test('strings over the cap are rejected', async () => {
    const rep = JSON.parse(renderJson(sampleReport()))
    rep.targets[0].name = 'x'.repeat(20_000)
    await rejects(loadReport(file('long.json', JSON.stringify(rep))), /targets\[0\]\.name/)
  })
  test('files over 64 MiB are refused before reading', async () => {
    const p = file('huge.json', '')
    truncateSync(p, MAX_REPORT_BYTES + 1)
    await rejects(loadReport(p), /huge\.json: is larger than 64 MiB/)
  })
})
