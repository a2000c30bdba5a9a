// Escaping for every output format. Everything that came from a target (names, versions,
// paths, env values, entry names, error lines, labels) passes through one of these first.

// C0 controls except tab and newline, DEL, C1 controls; U+FFFE/U+FFFF (not characters in
// XML 1.0); bidi embeddings/overrides/isolates, which can visually reorder a line of a report.
const UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point (they are stripped from untrusted text)
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\ufffe\uffff\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g

/** Any value as display text: non-strings as JSON, unsafe characters as U+FFFD, capped at `max`. */
export function cleanText(value: unknown, max = 4096, opts: {keepNewlines?: boolean} = {}): string {
  let s: string
  if (value === null || value === undefined) s = '—'
  else if (typeof value === 'string') s = value
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') s = String(value)
  else s = JSON.stringify(value) ?? String(value)
  s = s.replace(/\r\n?/g, '\n').replace(UNSAFE, '\ufffd')
  if (!opts.keepNewlines) s = s.replace(/\n/g, ' ')
  if (s.length > max) {
    // never cut a surrogate pair in half
    let cut = max - 1
    if (/[\ud800-\udbff]/.test(s.charAt(cut - 1))) cut--
    s = `${s.slice(0, cut)}…`
  }
  return s
}

const HTML_ENTITIES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}

/** Text for HTML element content or a double-quoted attribute value. */
export function escapeHtml(value: unknown, max?: number, opts: {keepNewlines?: boolean} = {}): string {
  return cleanText(value, max, opts).replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]!)
}

const XML_ENTITIES: Record<string, string> = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;'}

/** Text for XML 1.0 content or attributes: characters illegal in XML are already gone (cleanText). */
export function escapeXml(value: unknown, max?: number, opts: {keepNewlines?: boolean} = {}): string {
  const s = cleanText(value, max, opts).replace(/[&<>"']/g, (c) => XML_ENTITIES[c]!)
  // attribute values normalize newlines to spaces; keep them as character references
  return opts.keepNewlines ? s : s.replace(/\t/g, '&#9;')
}

/**
 * Inline Markdown (a table cell, a heading, a list item): punctuation that GitHub Flavored
 * Markdown interprets is backslash-escaped, `<`/`>`/`&` become entities (no raw HTML, no
 * entity tricks), URL autolinks are broken, and `@mentions` / `#123` references get a
 * zero-width space so GitHub does not notify anyone or link an issue.
 */
export function escapeMarkdown(value: unknown, max?: number): string {
  return cleanText(value, max)
    .replace(/[\\`*_[\]()#!|~$]/g, (c) => `\\${c}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/(www)\./gi, '$1\\.')
    .replace(/:\/\//g, '&#58;//')
    .replace(/@/g, '@&#8203;')
    .replace(/\\#(?=\d)/g, '#&#8203;')
}

/** A fenced code block that no content can close: the fence is longer than any backtick run inside. */
export function markdownFence(content: string, info = ''): string {
  const body = cleanText(content, 64 * 1024, {keepNewlines: true})
  const longest = Math.max(0, ...[...body.matchAll(/`+/g)].map((m) => m[0].length))
  const fence = '`'.repeat(Math.max(3, longest + 1))
  return `${fence}${info}\n${body}\n${fence}`
}

/** GitHub workflow-command message data (`::error::DATA`). */
export function escapeWorkflowData(value: unknown, max = 4096): string {
  return cleanText(value, max, {keepNewlines: true}).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
}

/** GitHub workflow-command property values (`title=VALUE`): also `:` and `,`. */
export function escapeWorkflowProperty(value: unknown, max = 256): string {
  return escapeWorkflowData(value, max).replace(/:/g, '%3A').replace(/,/g, '%2C')
}

/** Only plain https URLs become links; anything else is shown as text. */
export function safeHttpsUrl(value: unknown): string | null {
  if (typeof value !== 'string' || value.length > 2048) return null
  return /^https:\/\/[A-Za-z0-9.-]+(?::\d+)?(?:\/[A-Za-z0-9._~/%#?=&+,;@-]*)?$/.test(value) ? value : null
}
