import {describe, test} from 'node:test'
import assert from 'node:assert/strict'
import {extractTar, TarError} from '../../../src/targets/tar.js'

/** Build a ustar archive by hand: [name, type, content]. */
function tar(entries: [string, string, string | Buffer][]): Buffer {
  const blocks: Buffer[] = []
  for (const [name, type, content] of entries) {
    const data = Buffer.isBuffer(content) ? content : Buffer.from(content)
    const h = Buffer.alloc(512)
    h.write(name, 0, 100, 'utf8')
    h.write('0000644\0', 100)
    h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124)
    h.write(type, 156)
    h.write('ustar\0', 257)
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

const CAPS = {'run.json': 100, 'trace.json': 1000}

describe('tar extraction of container artifacts', () => {
  test('keeps allowlisted regular files from out/', () => {
    const files = extractTar(
      tar([
        ['out/', '5', ''],
        ['out/run.json', '0', '{"a":1}'],
        ['out/trace.json', '0', '[]'],
      ]),
      CAPS,
    )
    assert.deepEqual(
      files.map((f) => [f.name, f.data.toString()]),
      [
        ['run.json', '{"a":1}'],
        ['trace.json', '[]'],
      ],
    )
  })
  test('never materializes symlinks, hard links, devices, unknown names or nested paths', () => {
    const files = extractTar(
      tar([
        ['out/run.json', '2', ''], // symlink named like an artifact
        ['out/trace.json', '1', ''], // hard link
        ['out/evil.sh', '0', 'rm -rf /'],
        ['out/deep/x/run.json', '0', '{}'],
        ['out/../run.json', '0', '{}'],
      ]),
      CAPS,
    )
    assert.deepEqual(files, [])
  })
  test('an allowlisted file over its cap is an error', () => {
    assert.throws(() => extractTar(tar([['out/run.json', '0', 'x'.repeat(101)]]), CAPS), TarError)
  })
  test('a truncated archive is an error, not a short read', () => {
    const full = tar([['out/trace.json', '0', 'y'.repeat(900)]])
    assert.throws(() => extractTar(full.subarray(0, 700), CAPS), /past the end/)
  })
  test('PAX long names are honoured', () => {
    const pax = '30 path=out/run.json\n'
    const files = extractTar(
      tar([
        ['PaxHeader', 'x', pax],
        ['out/whatever-short', '0', '{}'],
      ]),
      CAPS,
    )
    assert.deepEqual(
      files.map((f) => f.name),
      ['run.json'],
    )
  })
})
