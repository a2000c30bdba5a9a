// The HTML report in a real browser (Debian's headless Chromium): the charts render, nothing
// is fetched, nothing runs, and a report full of hostile strings stays inert.
import {after, before, describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {pathToFileURL} from 'node:url'
import {chromium, type Browser, type Page} from 'playwright-core'
import {renderHtml} from '../../src/report/html.js'
import {PAYLOAD, sampleReport} from '../unit/report/sample.js'
import {ROOT} from './helpers.js'
import {CHROMIUM, needs} from './prereqs.js'

const SHOTS = mkdtempSync(path.join(os.tmpdir(), 'repro-html-'))
// Skipped only off CI, with the reason; under CI=true a missing Chromium fails the test (bootstrap --full installs it).
const skip = needs('chromium')

interface Visit {
  page: Page
  requests: string[]
  errors: string[]
  dialogs: string[]
}

describe('HTML report in Chromium', {skip}, () => {
  let browser: Browser
  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    })
  })
  after(async () => {
    await browser?.close()
  })

  async function visit(file: string): Promise<Visit> {
    const page = await browser.newPage({viewport: {width: 1366, height: 900}})
    const v: Visit = {page, requests: [], errors: [], dialogs: []}
    page.on('request', (r) => v.requests.push(r.url()))
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') v.errors.push(m.text())
    })
    page.on('pageerror', (e) => v.errors.push(e.message))
    page.on('dialog', async (d) => {
      v.dialogs.push(d.message())
      await d.dismiss()
    })
    await page.goto(pathToFileURL(file).href, {waitUntil: 'load'})
    return v
  }

  for (const c of ['audit-threads', 'threads-drift', 'incomplete-run', 'reproducible']) {
    test(`${c}: charts render, no network, no console errors`, async () => {
      const file = path.join(ROOT, 'reports/examples', c, 'report.html')
      const v = await visit(file)
      const charts = await v.page.$$eval('figure > svg', (svgs) =>
        svgs.map((s) => {
          const box = s.getBoundingClientRect()
          return {
            w: box.width,
            h: box.height,
            marks: s.querySelectorAll('path, rect, line, text, circle').length,
            text: s.querySelectorAll('text').length,
          }
        }),
      )
      const expected = c === 'reproducible' ? 2 : 3 // divergence map only when something diverged
      assert.equal(charts.length, expected, JSON.stringify(charts))
      for (const ch of charts) {
        assert.ok(ch.w > 100 && ch.h > 50, JSON.stringify(ch))
        assert.ok(ch.marks > 10 && ch.text > 3, JSON.stringify(ch))
      }
      // the SVG fits the page: no horizontal scroll on a laptop screen
      const overflow = await v.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth)
      assert.ok(overflow <= 0, `page scrolls sideways by ${overflow}px`)
      assert.deepEqual(v.requests, [pathToFileURL(file).href])
      assert.deepEqual(v.errors, [])
      await v.page.screenshot({path: path.join(SHOTS, `${c}.png`), fullPage: true})
      await v.page.emulateMedia({media: 'print'})
      assert.equal(await v.page.evaluate(() => getComputedStyle(document.querySelector('nav')!).display), 'none')
      await v.page.close()
    })
  }

  test('a report full of hostile strings stays inert', async () => {
    const report = sampleReport(PAYLOAD)
    report.targets[0]!.identity!.details['labels'] = JSON.stringify({title: PAYLOAD})
    const file = path.join(SHOTS, 'hostile.html')
    writeFileSync(file, await renderHtml(report))
    const v = await visit(file)
    const dom = await v.page.evaluate(() => {
      const all = [...document.querySelectorAll('*')]
      return {
        scripts: document.querySelectorAll('script, iframe, object, embed, img, foreignObject').length,
        handlers: all.filter((el) => [...el.attributes].some((a) => a.name.startsWith('on'))).map((el) => el.outerHTML.slice(0, 120)),
        jsLinks: [...document.querySelectorAll('[href]')].filter((el) => /^\s*javascript:/i.test(el.getAttribute('href') ?? '')).length,
        details: document.querySelectorAll('details').length,
        text: document.body.textContent ?? '',
      }
    })
    assert.equal(dom.scripts, 0)
    assert.deepEqual(dom.handlers, [])
    assert.equal(dom.jsLinks, 0)
    assert.ok(dom.text.includes('<script>alert(1)</script>'), 'the payload is shown as text')
    assert.deepEqual(v.dialogs, [])
    assert.deepEqual(v.requests, [pathToFileURL(file).href])
    assert.deepEqual(v.errors, [])
    await v.page.screenshot({path: path.join(SHOTS, 'hostile.png'), fullPage: true})
    await v.page.close()
  })
})
