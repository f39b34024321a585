/**
 * Rate limits (submits, uploads) per caller: the client address together with the credential it
 * proved (a PC's secret, an admin's token, none), never a value the caller merely states such as a
 * `license_key`, which anyone can change on every request. A sliding-window counter per key (this
 * minute's count and the last minute's, weighted): two numbers a key, swept once a minute and
 * capped in number, so memory stays bounded however many addresses call. Over the limit: 429 with
 * Retry-After.
 */
import type { Request, RequestHandler } from 'express'
import { appError } from '../lib/errors.js'

const WINDOW_MS = 60_000
/** Most keys remembered; past it the oldest go first (they are the least likely to matter). */
export const MAX_KEYS = 50_000

interface Counter {
  /** The window (index of the minute) `count` belongs to. */
  window: number
  count: number
  /** The count of the window before. */
  previous: number
}

export class RateLimiter {
  readonly #perMinute: number
  readonly #now: () => number
  readonly #counters = new Map<string, Counter>()
  #sweptWindow = -1

  constructor(perMinute: number, now: () => number) {
    this.#perMinute = perMinute
    this.#now = now
  }

  /** Keys remembered now (for tests and metrics). */
  get size(): number {
    return this.#counters.size
  }

  /** Count one hit for `key`; the seconds to wait when over the limit, else 0. */
  take(key: string): number {
    const now = this.#now()
    const window = Math.floor(now / WINDOW_MS)
    this.#sweep(window)
    const counter = this.#counters.get(key) ?? { window, count: 0, previous: 0 }
    if (counter.window !== window) {
      counter.previous = counter.window === window - 1 ? counter.count : 0
      counter.count = 0
      counter.window = window
    }
    const intoWindow = (now - window * WINDOW_MS) / WINDOW_MS
    const recent = counter.previous * (1 - intoWindow) + counter.count
    if (recent + 1 > this.#perMinute) {
      this.#remember(key, counter)
      return Math.max(1, Math.ceil(((1 - intoWindow) * WINDOW_MS) / 1000))
    }
    counter.count += 1
    this.#remember(key, counter)
    return 0
  }

  middleware(keyOf: (req: Request) => string, what: string): RequestHandler {
    return (req, res, next) => {
      const wait = this.take(keyOf(req))
      if (wait === 0) {
        next()
        return
      }
      res.set('Retry-After', String(wait))
      next(appError('RATE_LIMITED', { params: { what, wait } }))
    }
  }

  #remember(key: string, counter: Counter): void {
    if (!this.#counters.has(key) && this.#counters.size >= MAX_KEYS) {
      // Map order is insertion order: drop the oldest tenth in one go.
      let drop = Math.ceil(MAX_KEYS / 10)
      for (const old of this.#counters.keys()) {
        if (drop-- <= 0) break
        this.#counters.delete(old)
      }
    }
    this.#counters.set(key, counter)
  }

  /** Once a window: forget keys not seen in this window or the one before. */
  #sweep(window: number): void {
    if (window === this.#sweptWindow) return
    this.#sweptWindow = window
    for (const [key, counter] of this.#counters) {
      if (counter.window < window - 1) this.#counters.delete(key)
    }
  }
}
