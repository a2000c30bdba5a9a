// Synchronous clean-up hooks run on Ctrl-C / SIGTERM (e.g. removing running containers):
// an async handler could be cut short by process.exit.

const hooks = new Set<() => void>()

export function onInterrupt(hook: () => void): () => void {
  hooks.add(hook)
  return () => hooks.delete(hook)
}

export function runInterruptHooks(): void {
  for (const hook of [...hooks]) {
    try {
      hook()
    } catch {
      // best effort: keep cleaning up the rest
    }
  }
  hooks.clear()
}
