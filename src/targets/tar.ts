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

/** What `cp CONTAINER:PATH -` says about one file: its type, permission bits and first bytes. */
export interface FileHead {
  type: 'file' | 'symlink' | 'directory' | 'other'
  /** permission bits (e.g. 0o755) */
  mode: number
  size: number
  /** the first bytes of a regular file (as many as arrived) */
  head: Buffer
}

/** The first entry of a (possibly cut short) tar stream, or null when there is none. */
export function firstTarEntry(tar: Buffer): FileHead | null {
  if (tar.length < 512) return null
  const header = tar.subarray(0, 512)
  if (header.every((b) => b === 0)) return null
  const typeFlag = String.fromCharCode(header[156]!)
  const size = octal(header, 124, 12)
  const type = typeFlag === '0' || typeFlag === '\0' ? 'file' : typeFlag === '2' ? 'symlink' : typeFlag === '5' ? 'directory' : 'other'
  if (typeFlag === 'x' || typeFlag === 'L') {
    // a PAX or long-name header comes first: the entry itself follows its data
    const next = 512 + Math.ceil(size / 512) * 512
    return firstTarEntry(tar.subarray(next))
  }
  return {type, mode: octal(header, 100, 8) & 0o7777, size, head: Buffer.from(tar.subarray(512, 512 + (type === 'file' ? size : 0)))}
}

export interface TarInput {
  /** path inside the archive, `/`-separated, relative */
  name: string
  /** file contents; undefined for a directory */
  data?: Buffer
  mode?: number
}

function header(name: string, size: number, mode: number, type: '0' | '5'): Buffer {
  const h = Buffer.alloc(512)
  let prefix = ''
  let base = name
  if (Buffer.byteLength(name) > 100) {
    // ustar splits long names at a `/` into prefix (≤ 155) and name (≤ 100)
    const cut = name.lastIndexOf('/', 155)
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new TarError(`path too long for a tar header: ${name.slice(0, 80)}`)
    prefix = name.slice(0, cut)
    base = name.slice(cut + 1)
  }
  h.write(base, 0, 100, 'utf8')
  h.write(`${mode.toString(8).padStart(7, '0')}\0`, 100)
  h.write('0000000\0', 108) // uid
  h.write('0000000\0', 116) // gid
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124)
  h.write('00000000000\0', 136) // mtime: fixed, so the archive depends on contents only
  h.write(type, 156)
  h.write('ustar\0', 257)
  h.write('00', 263)
  h.write(prefix, 345, 155, 'utf8')
  // checksum: the header's bytes with the checksum field as spaces
  h.write('        ', 148)
  let sum = 0
  for (const b of h) sum += b
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
  return h
}

/** A ustar archive of the given entries, in the given order (`cp - CONTAINER:DIR` unpacks it in order). */
export function writeTar(entries: TarInput[]): Buffer {
  const blocks: Buffer[] = []
  for (const e of entries) {
    if (e.data === undefined) {
      blocks.push(header(e.name.replace(/\/?$/, '/'), 0, e.mode ?? 0o755, '5'))
      continue
    }
    blocks.push(header(e.name, e.data.length, e.mode ?? 0o644, '0'), e.data, Buffer.alloc((512 - (e.data.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}
