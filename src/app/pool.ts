// Bounded concurrency for targets (--jobs), and one lock per GPU device so GPU runs never
// share a device while CPU targets run side by side.

export async function pool(count: number, jobs: number, work: (index: number) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < count) {
      const i = next++
      await work(i)
    }
  }
  await Promise.all(Array.from({length: Math.min(jobs, count)}, worker))
}

/**
 * At most `n` of the calls it wraps run at once, the rest wait in call order: the explain stage's
 * reruns and replays share the audit's --jobs this way, across workloads and experiments.
 */
export function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let running = 0
  const waiting: (() => void)[] = []
  return async (fn) => {
    if (running >= n) await new Promise<void>((resolve) => waiting.push(resolve))
    else running++
    try {
      return await fn()
    } finally {
      const next = waiting.shift()
      if (next) next()
      else running--
    }
  }
}

const deviceLocks = new Map<string, Promise<unknown>>()

/** Run `fn` holding the lock of `device` when it is a GPU (`cuda`, `cuda:N`); CPU runs freely. */
export async function withDevice<T>(device: string, fn: () => Promise<T>): Promise<T> {
  if (!device.startsWith('cuda')) return fn()
  const key = device === 'cuda' ? 'cuda:0' : device
  const previous = deviceLocks.get(key) ?? Promise.resolve()
  const run = previous.then(fn, fn)
  deviceLocks.set(
    key,
    run.catch(() => undefined),
  )
  return run
}
