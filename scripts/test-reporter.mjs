// node's test runner reporter for scripts/run-tests.mjs: one line per finished test as it
// finishes (so a run streams), the failure's error under it, anything the test file printed,
// and at the end one machine-readable line (`##repro-tests {…}`) with every test's duration and
// the file's counts, which the runner turns into the slowest-tests table and the totals.

import {inspect} from 'node:util'

const seconds = (ms) => `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`

function errorText(error) {
  if (!error) return ''
  const cause = error.cause ?? error
  const text = cause instanceof Error ? (cause.stack ?? String(cause)) : inspect(cause, {depth: 4})
  return text.replace(/^/gm, '    ')
}

export default async function* reporter(source) {
  const stack = []
  const tests = []
  const counts = {pass: 0, fail: 0, skipped: 0, todo: 0, cancelled: 0}
  for await (const event of source) {
    const {type, data} = event
    if (type === 'test:start') {
      stack[data.nesting] = data.name
      stack.length = data.nesting + 1
      continue
    }
    if (type === 'test:stdout' || type === 'test:stderr') {
      yield data.message.replace(/^(?=.)/gm, '  | ')
      continue
    }
    if (type !== 'test:pass' && type !== 'test:fail') continue
    const isSuite = data.details?.type === 'suite'
    const name = [...stack.slice(0, data.nesting), data.name].join(' › ')
    const ms = data.details?.duration_ms ?? 0
    if (isSuite) {
      // a suite fails by itself only when its own code threw (its tests report their failures)
      if (type === 'test:fail' && !/subtests? failed$/.test(String(data.details?.error?.message ?? ''))) {
        counts.fail++
        tests.push({name, ms, status: 'fail'})
        yield `✖ ${name} (${seconds(ms)})\n${errorText(data.details?.error)}\n`
      }
      continue
    }
    let status = type === 'test:pass' ? 'pass' : 'fail'
    if (data.skip !== undefined && data.skip !== false) status = 'skipped'
    else if (data.todo !== undefined && data.todo !== false) status = 'todo'
    else if (type === 'test:fail' && data.details?.error?.failureType === 'cancelledByParent') status = 'cancelled'
    counts[status]++
    tests.push({name, ms, status})
    const mark = {pass: '✔', fail: '✖', skipped: '﹣', todo: '﹣', cancelled: '✖'}[status]
    const note = status === 'skipped' ? ` # SKIP ${data.skip === true ? '' : data.skip}` : ''
    yield `${mark} ${name} (${seconds(ms)})${note}\n`
    if (type === 'test:fail') yield `${errorText(data.details?.error)}\n`
  }
  yield `##repro-tests ${JSON.stringify({counts, tests})}\n`
}
