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

// Asynchronous hooks run once a command is done (ReproCommand.finally), after its output:
// e.g. removing the containers a target kept for its next run.
const finishers = new Set<() => Promise<void>>()

export function onFinish(hook: () => Promise<void>): () => void {
  finishers.add(hook)
  return () => finishers.delete(hook)
}

export async function runFinishHooks(): Promise<void> {
  const all = [...finishers]
  finishers.clear()
  await Promise.all(all.map((hook) => hook().catch(() => undefined)))
}
