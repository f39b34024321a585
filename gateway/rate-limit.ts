/**
 * Per-owner rate limits (submits, uploads): a sliding one-minute window per key (the license key,
 * or the caller's address when the request names none). Over the limit: 429 with Retry-After.
 */
import type { Request, RequestHandler } from 'express'
import { AppError } from '../lib/errors.js'

const WINDOW_MS = 60_000

export class RateLimiter {
  readonly #perMinute: number
  readonly #now: () => number
  readonly #hits = new Map<string, number[]>()

  constructor(perMinute: number, now: () => number) {
    this.#perMinute = perMinute
    this.#now = now
  }

  /** Count one hit for `key`; the seconds to wait when over the limit, else 0. */
  take(key: string): number {
    const now = this.#now()
    const recent = (this.#hits.get(key) ?? []).filter((t) => now - t < WINDOW_MS)
    if (recent.length >= this.#perMinute) {
      this.#hits.set(key, recent)
      return Math.max(1, Math.ceil((WINDOW_MS - (now - (recent[0] ?? now))) / 1000))
    }
    recent.push(now)
    this.#hits.set(key, recent)
    if (this.#hits.size > 10_000) this.#prune(now)
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
      next(new AppError('RATE_LIMITED', 429, `${what}过于频繁，请 ${String(wait)} 秒后再试`))
    }
  }

  #prune(now: number): void {
    for (const [key, hits] of this.#hits) {
      if (hits.every((t) => now - t >= WINDOW_MS)) this.#hits.delete(key)
    }
  }
}
