/**
 * Failed logins slowed per client address (docs/design.md §7, "Who may call"). After
 * `threshold` refused credentials from one address within `windowMs`, the address is in backoff:
 * every request from it that carries a credential is refused at once (429, Retry-After) until its
 * wait is over, and each further refused credential doubles the wait, from `firstWaitMs` up to
 * `maxWaitMs`. A credential that holds ends the backoff; so do `windowMs` without a refusal.
 *
 * Only addresses are kept, never a credential or any part of one. Bounded: at most `maxKeys`
 * addresses (the oldest go first), each a handful of numbers, swept once a minute.
 */

export interface LoginBackoffOptions {
  /** A monotonic clock in ms (a wall-clock step must not lock anyone out for a day). */
  readonly now: () => number
  readonly threshold?: number
  readonly windowMs?: number
  readonly firstWaitMs?: number
  readonly maxWaitMs?: number
  readonly maxKeys?: number
}

/** What a refused credential did to its address. */
export interface LoginFailure {
  /** Refused credentials from the address within the window (at most the threshold). */
  readonly failures: number
  /** The wait it now has before its next try, in whole seconds; 0 when not in backoff. */
  readonly retryAfterS: number
}

interface Entry {
  /** Times of the most recent refusals, oldest first, at most `threshold` of them. */
  readonly times: number[]
  /** Refusals since the backoff began (0: not in backoff). */
  strikes: number
  /** Until when credentials from the address are refused at once. */
  blockedUntil: number
}

const DEFAULTS = {
  threshold: 5,
  windowMs: 10 * 60_000,
  firstWaitMs: 1_000,
  maxWaitMs: 300_000,
  maxKeys: 20_000,
} as const
const SWEEP_MS = 60_000

export class LoginBackoff {
  readonly #o: Required<LoginBackoffOptions>
  readonly #entries = new Map<string, Entry>()
  #sweptAt: number

  constructor(options: LoginBackoffOptions) {
    this.#o = { ...DEFAULTS, ...options }
    this.#sweptAt = this.#o.now()
  }

  /** Addresses remembered now (for tests and metrics). */
  get size(): number {
    return this.#entries.size
  }

  /** Seconds `address` must still wait before a credential of its is looked at; 0: none. */
  retryAfterS(address: string): number {
    const now = this.#o.now()
    this.#sweep(now)
    const entry = this.#entries.get(address)
    if (!entry || entry.blockedUntil <= now) return 0
    return Math.max(1, Math.ceil((entry.blockedUntil - now) / 1000))
  }

  /** Count a refused credential from `address`. */
  failed(address: string): LoginFailure {
    const now = this.#o.now()
    this.#sweep(now)
    const known = this.#entries.get(address)
    // Quiet for a whole window (the sweep may not have come by yet): a fresh start.
    const stale =
      known !== undefined && known.blockedUntil <= now && lastOf(known) <= now - this.#o.windowMs
    const entry = known && !stale ? known : { times: [], strikes: 0, blockedUntil: 0 }
    const recent = entry.times.filter((t) => t > now - this.#o.windowMs)
    recent.push(now)
    entry.times.splice(0, entry.times.length, ...recent.slice(-this.#o.threshold))
    if (entry.strikes > 0 || entry.times.length >= this.#o.threshold) {
      entry.strikes += 1
      const wait = Math.min(this.#o.maxWaitMs, this.#o.firstWaitMs * 2 ** (entry.strikes - 1))
      entry.blockedUntil = now + wait
    }
    this.#remember(address, entry)
    const waiting = entry.blockedUntil > now
    return {
      failures: entry.times.length,
      retryAfterS: waiting ? Math.ceil((entry.blockedUntil - now) / 1000) : 0,
    }
  }

  #remember(address: string, entry: Entry): void {
    // Re-inserted, so Map order is "least recently refused first".
    this.#entries.delete(address)
    if (this.#entries.size >= this.#o.maxKeys) {
      let drop = Math.ceil(this.#o.maxKeys / 10)
      for (const old of this.#entries.keys()) {
        if (drop-- <= 0) break
        this.#entries.delete(old)
      }
    }
    this.#entries.set(address, entry)
  }

  /** Once a minute: forget addresses not refused within the window and not waiting. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < SWEEP_MS) return
    this.#sweptAt = now
    for (const [address, entry] of this.#entries) {
      if (entry.blockedUntil <= now && lastOf(entry) <= now - this.#o.windowMs) {
        this.#entries.delete(address)
      }
    }
  }
}

function lastOf(entry: Entry): number {
  return entry.times.at(-1) ?? Number.NEGATIVE_INFINITY
}
