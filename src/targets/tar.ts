// A minimal, hostile-input tar reader for the artifacts a container hands back through
// `docker cp CONTAINER:PATH -`: only regular files with allowlisted names and sizes under
// their caps are returned; links, devices and path tricks are never materialized.

export interface TarFile {
  name: string
  data: Buffer
}

export class TarError extends Error {
  override name = 'TarError'
}

function field(block: Buffer, start: number, len: number): string {
  const raw = block.subarray(start, start + len)
  const nul = raw.indexOf(0)
  return raw.subarray(0, nul < 0 ? len : nul).toString('utf8')
}

function octal(block: Buffer, start: number, len: number): number {
  const s = field(block, start, len).trim()
  if (s === '') return 0
  if (!/^[0-7]+$/.test(s)) throw new TarError(`bad numeric field ${JSON.stringify(s.slice(0, 20))}`)
  return parseInt(s, 8)
}

/**
 * Extract regular files whose basename is a key of `caps` (the value is its byte cap).
 * Anything else (directories, symlinks, unknown names) is skipped; an oversized allowlisted
 * file is an error.
 */
export function extractTar(tar: Buffer, caps: Record<string, number>): TarFile[] {
  const out: TarFile[] = []
  let pos = 0
  let longName: string | null = null
  while (pos + 512 <= tar.length) {
    const header = tar.subarray(pos, pos + 512)
    if (header.every((b) => b === 0)) break
    const size = octal(header, 124, 12)
    const type = String.fromCharCode(header[156]!)
    const prefix = field(header, 345, 155)
    let name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100))
    longName = null
    const dataStart = pos + 512
    const dataEnd = dataStart + size
    if (dataEnd > tar.length) throw new TarError(`entry ${JSON.stringify(name.slice(0, 80))} runs past the end of the archive`)
    if (type === 'x') {
      // PAX extended header: honour only `path`.
      const m = /\d+ path=([^\n]*)\n/.exec(tar.subarray(dataStart, dataEnd).toString('utf8'))
      if (m) longName = m[1]!
    } else if (type === 'L') {
      longName = tar.subarray(dataStart, dataEnd).toString('utf8').replace(/\0.*$/s, '')
    } else if (type === '0' || type === '\0') {
      name = name.replace(/\/+$/, '')
      const base = name.split('/').pop() ?? ''
      const depth = name.split('/').filter(Boolean).length
      const cap = Object.hasOwn(caps, base) ? caps[base] : undefined
      // Only `out/<file>` (depth ≤ 2): nothing from a nested directory is taken.
      if (cap !== undefined && depth <= 2 && !name.split('/').includes('..')) {
        if (size > cap) throw new TarError(`${base} is ${size} bytes, over its ${cap}-byte cap`)
        out.push({name: base, data: Buffer.from(tar.subarray(dataStart, dataEnd))})
      }
    }
    pos = dataStart + Math.ceil(size / 512) * 512
  }
  return out
}
