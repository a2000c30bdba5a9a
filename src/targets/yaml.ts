// A small YAML writer for the fixed shapes repro emits (Kubernetes manifests), rather than a
// YAML library: block maps and lists in the order given, a string plain only where no YAML 1.1
// or 1.2 reader (go-yaml, PyYAML, podman's) can take it for anything else, otherwise
// double-quoted (JSON's escapes, which YAML shares), and multi-line text as a literal block so
// the launcher's source stays readable. Pure.

export type YamlValue = string | number | boolean | null | YamlValue[] | {[key: string]: YamlValue}

// words YAML 1.1 reads as booleans or null (`on`, `no`, `y`…), in any case
const RESERVED = /^(y|yes|n|no|true|false|on|off|null)$/i
const PLAIN = /^[A-Za-z/][A-Za-z0-9._/-]*$/
// outside YAML's printable set (and the line separators YAML 1.1 breaks lines at): escaped
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f-\u0084\u0086-\u009f\u2028\u2029\ufeff]/

/** One YAML document (ending in a newline) for a value whose top level is a map. */
export function toYaml(value: {[key: string]: YamlValue}): string {
  return `${mapLines(value, 0).join('\n')}\n`
}

/** Several documents in one stream, `---` between them. */
export function yamlDocuments(values: {[key: string]: YamlValue}[]): string {
  return values.map(toYaml).join('---\n')
}

function scalar(v: string | number | boolean | null): string {
  if (v === null) return 'null'
  if (typeof v === 'boolean') return String(v)
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`YAML: ${v} is not a finite number`)
    return String(v)
  }
  return PLAIN.test(v) && !RESERVED.test(v) ? v : quoted(v)
}

function quoted(s: string): string {
  // JSON.stringify escapes quotes, backslashes, C0 controls and lone surrogates; YAML wants DEL,
  // C1 controls and U+2028/9 escaped too
  return JSON.stringify(s).replace(new RegExp(UNPRINTABLE.source, 'g'), (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** A literal block (`|`, `|-`, `|+`) for multi-line text, or null when quoting is safer. */
function literal(s: string, indent: number): string[] | null {
  if (!s.includes('\n') || s.includes('\r') || UNPRINTABLE.test(s) || s.trim() === '') return null
  // the block's indentation is taken from its first non-empty line: one that starts with
  // whitespace would need an indentation indicator, so such text is quoted instead
  const first = s.split('\n').find((l) => l !== '')!
  if (/^[ \t]/.test(first)) return null
  let chomp = '-'
  let body = s
  if (s.endsWith('\n\n')) {
    chomp = '+'
    body = s.slice(0, -1)
  } else if (s.endsWith('\n')) {
    chomp = ''
    body = s.slice(0, -1)
  }
  const pad = ' '.repeat(indent)
  return [`|${chomp}`, ...body.split('\n').map((l) => (l === '' ? '' : pad + l))]
}

/** The text after `key:` or `- `: an inline scalar, or a header and the lines under it. */
function valueAfter(v: YamlValue, indent: number): {inline: string; lines: string[]} {
  if (Array.isArray(v)) return v.length === 0 ? {inline: ' []', lines: []} : {inline: '', lines: listLines(v, indent)}
  if (v !== null && typeof v === 'object')
    return Object.keys(v).length === 0 ? {inline: ' {}', lines: []} : {inline: '', lines: mapLines(v, indent)}
  if (typeof v === 'string') {
    const block = literal(v, indent)
    if (block) return {inline: ` ${block[0]}`, lines: block.slice(1)}
  }
  return {inline: ` ${scalar(v)}`, lines: []}
}

function mapLines(map: {[key: string]: YamlValue}, indent: number): string[] {
  const pad = ' '.repeat(indent)
  const out: string[] = []
  for (const [k, v] of Object.entries(map)) {
    // an absent optional field, as JSON.stringify leaves it out
    if (v === undefined) continue
    const after = valueAfter(v, indent + 2)
    out.push(`${pad}${scalar(k)}:${after.inline}`, ...after.lines)
  }
  return out
}

function listLines(list: YamlValue[], indent: number): string[] {
  const pad = ' '.repeat(indent)
  const out: string[] = []
  for (const item of list) {
    const after = valueAfter(item, indent + 2)
    if (after.inline === '' && after.lines.length > 0) {
      // a nested map or list starts on the dash's line
      out.push(`${pad}- ${after.lines[0]!.slice(indent + 2)}`, ...after.lines.slice(1))
    } else out.push(`${pad}-${after.inline}`, ...after.lines)
  }
  return out
}
