/**
 * Writes that nothing reads at once, taken off the hot path: kept in memory by key (`merge`
 * decides which value is kept) and written together in one transaction `delayMs` after the first
 * of a batch, and at `flush()` (shutdown). A commit is an fsync; each user says why losing a
 * batch in a crash loses nothing that counts. A batch that cannot be written (a full disk) is
 * dropped with a warning, for the same reason.
 */
import type { Logger } from 'pino'
import type { Db } from './db.js'

export interface WriteBehindOptions<K, V> {
  readonly db: Db
  /** Writes one entry (a prepared statement's run); called inside the batch's transaction. */
  readonly write: (key: K, value: V) => void
  /** When a key is set again before its batch is written: the value kept. */
  readonly merge?: (older: V, newer: V) => V
  readonly delayMs: number
  readonly log: Logger
  /** What the batch is, for the log. */
  readonly what: string
}

export class WriteBehind<K, V> {
  readonly #o: WriteBehindOptions<K, V>
  readonly #pending = new Map<K, V>()
  #timer: NodeJS.Timeout | undefined

  constructor(options: WriteBehindOptions<K, V>) {
    this.#o = options
  }

  set(key: K, value: V): void {
    const older = this.#pending.get(key)
    const { merge } = this.#o
    this.#pending.set(key, older !== undefined && merge ? merge(older, value) : value)
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.flush()
      }, this.#o.delayMs)
      this.#timer.unref()
    }
  }

  /** Writes what is pending now, in one transaction. */
  flush(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#pending.size === 0) return
    const batch = [...this.#pending]
    this.#pending.clear()
    const { db, write, log, what } = this.#o
    try {
      db.transaction(() => {
        for (const [key, value] of batch) write(key, value)
      })()
    } catch (err) {
      log.warn({ err, count: batch.length, what }, 'deferred writes dropped')
    }
  }
}
