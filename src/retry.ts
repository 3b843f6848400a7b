/** How often `pollUntil` looks: the first pause, doubled after each look up to `maxMs`, for at most `timeoutMs`. */
export interface PollSchedule {
  timeoutMs: number
  firstMs: number
  maxMs: number
  /** The error thrown once `timeoutMs` has passed without an answer. */
  timeoutError: () => Error
}

/**
 * Calls `look` until it returns something other than undefined, and resolves with that. A doubling pause finds
 * a quick answer within a few milliseconds without polling a slow one hundreds of times. `look` runs once more
 * after the last pause, so an answer that arrives just at the deadline still counts.
 */
export async function pollUntil<T>(look: () => T | undefined | Promise<T | undefined>, schedule: PollSchedule): Promise<T> {
  const deadline = Date.now() + schedule.timeoutMs
  for (let delay = schedule.firstMs; ; delay = Math.min(delay * 2, schedule.maxMs)) {
    const found = await look()
    if (found !== undefined) return found
    if (Date.now() > deadline) throw schedule.timeoutError()
    await new Promise((r) => setTimeout(r, delay))
  }
}
