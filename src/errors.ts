// Known failures carry an exit code and a hint; everything else is an internal error (exit 3).
// Commands print `message` and `hint` on one line each; stack traces only with --debug.

export const ExitCode = {
  Reproducible: 0,
  Drift: 1,
  UsageOrEnvironment: 2,
  Internal: 3,
} as const
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode]

export class ReproError extends Error {
  readonly code: ExitCodeValue
  readonly hint: string
  /** Which target (or file) the problem belongs to, when there is one. */
  readonly subject: string | undefined

  constructor(message: string, opts: {hint: string; subject?: string; code?: ExitCodeValue; cause?: unknown}) {
    super(message, opts.cause === undefined ? undefined : {cause: opts.cause})
    this.name = 'ReproError'
    this.code = opts.code ?? ExitCode.UsageOrEnvironment
    this.hint = opts.hint
    this.subject = opts.subject
  }

  /** One line: `<subject>: <message> — <hint>`. */
  oneLine(): string {
    const subject = this.subject ? `${this.subject}: ` : ''
    return `${subject}${this.message} — ${this.hint}`.replace(/\s*\n\s*/g, ' ')
  }
}

export function isReproError(e: unknown): e is ReproError {
  return e instanceof ReproError
}
