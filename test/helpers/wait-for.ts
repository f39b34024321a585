/** Wait on a condition, never on a sleep (STYLE: tests). */
import { setTimeout as delay } from 'node:timers/promises'
import { errorMessage } from '../../lib/errors.js'

export interface WaitForOptions {
  /** Give up after this long (default 10 s). */
  readonly timeoutMs?: number
  /** Poll this often (default 25 ms). */
  readonly intervalMs?: number
  /** What is awaited, for the timeout message: `'task done'`. */
  readonly what?: string
}

export type Truthy<T> = Exclude<T, false | 0 | 0n | '' | null | undefined>

function isTruthy<T>(value: T): value is Truthy<T> {
  return Boolean(value)
}

/**
 * Call `fn` until it returns a truthy value and resolve with that value. A throw counts as "not yet"
 * (a server still starting); on timeout the rejection names `what` and the last error, if any.
 */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<Truthy<T>> {
  const { timeoutMs = 10_000, intervalMs = 25, what = 'condition' } = options
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let failure: { readonly err: unknown } | null = null
    try {
      const value = await fn()
      if (isTruthy(value)) return value
    } catch (err) {
      failure = { err }
    }
    if (Date.now() >= deadline) {
      const last = failure ? ` (last error: ${errorMessage(failure.err)})` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}`, {
        cause: failure?.err,
      })
    }
    await delay(intervalMs)
  }
}
