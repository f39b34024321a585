/**
 * Failed MQTT logins slow down per client address (docs/design.md, "Hostile and slow MQTT
 * clients"), as HTTP logins do: after `freeFailures` refused credentials from one address, each
 * within `windowMs` of the one before, the address is refused at once for a wait that starts at
 * `firstWaitMs` and doubles with each further failure up to `maxWaitMs`. A successful login forgets
 * nothing (else one valid login would let its holder guess other passwords at full speed: four
 * wrong, one right, repeat): failures expire only by the window. State is bounded: an address is
 * forgotten `windowMs` after its last failure, and at most `maxAddresses` are kept (the one whose
 * last failure is oldest goes first). Time is monotonic (a clock step changes nothing).
 */
export interface LoginBackoffOptions {
  readonly freeFailures: number
  readonly windowMs: number
  readonly firstWaitMs: number
  readonly maxWaitMs: number
  readonly maxAddresses: number
  /** Monotonic milliseconds. */
  readonly now: () => number
}

export const DEFAULT_LOGIN_BACKOFF: Omit<LoginBackoffOptions, 'now'> = Object.freeze({
  freeFailures: 5,
  windowMs: 10 * 60_000,
  firstWaitMs: 1_000,
  maxWaitMs: 300_000,
  maxAddresses: 10_000,
})

interface Entry {
  failures: number
  lastFailureAt: number
  waitMs: number
  blockedUntil: number
}

export class LoginBackoff {
  readonly #options: LoginBackoffOptions
  /** In order of last failure, oldest first (re-inserted on every failure). */
  readonly #entries = new Map<string, Entry>()

  constructor(options: LoginBackoffOptions) {
    this.#options = options
  }

  /** Milliseconds this address must still wait before a login is even checked; 0: go ahead. */
  waitFor(address: string): number {
    const entry = this.#entries.get(address)
    if (!entry) return 0
    return Math.max(0, Math.ceil(entry.blockedUntil - this.#options.now()))
  }

  /** A refused credential from this address; returns the wait it now has (0: none yet). */
  failed(address: string): number {
    const now = this.#options.now()
    this.#sweep(now)
    const previous = this.#entries.get(address)
    const entry: Entry =
      previous && now - previous.lastFailureAt <= this.#options.windowMs
        ? previous
        : { failures: 0, lastFailureAt: now, waitMs: 0, blockedUntil: 0 }
    entry.failures++
    entry.lastFailureAt = now
    if (entry.failures >= this.#options.freeFailures) {
      entry.waitMs =
        entry.waitMs === 0
          ? this.#options.firstWaitMs
          : Math.min(entry.waitMs * 2, this.#options.maxWaitMs)
      entry.blockedUntil = now + entry.waitMs
    }
    this.#entries.delete(address)
    while (this.#entries.size >= this.#options.maxAddresses) {
      const oldest = this.#entries.keys().next()
      if (oldest.done === true) break
      this.#entries.delete(oldest.value)
    }
    this.#entries.set(address, entry)
    return entry.waitMs === 0 ? 0 : Math.max(0, entry.blockedUntil - now)
  }

  /** Addresses remembered (for tests). */
  get size(): number {
    return this.#entries.size
  }

  /** Forget addresses whose last failure is older than the window (the oldest come first). */
  #sweep(now: number): void {
    for (const [address, entry] of this.#entries) {
      if (now - entry.lastFailureAt <= this.#options.windowMs) return
      this.#entries.delete(address)
    }
  }
}
