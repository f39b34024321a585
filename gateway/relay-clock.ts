/**
 * The relay clock (docs/design.md §3.8): milliseconds that advance only by monotonic time while the
 * gateway runs, persisted in SQLite so a restart carries on where the last run stopped. Durations
 * (queue TTL, execution and stall timeouts, retention) are measured on it, so a step of the wall
 * clock (NTP, a resumed VM) and the gateway's own downtime count for nothing. Wall-clock times stay
 * for display only.
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'

/** How often the reading is written back (a crash loses at most this much of the clock). */
const PERSIST_EVERY_MS = 5_000

export class RelayClock {
  readonly #monotonic: () => number
  readonly #base: number
  readonly #startedAt: number
  readonly #save: Statement<[number, number]>
  #savedAt: number

  /** `monotonic`: a clock no wall step moves (default `performance.now`). */
  constructor(db: Db, monotonic: () => number = () => performance.now()) {
    const row = db.prepare<[], { ms: number }>('SELECT ms FROM relay_clock WHERE id = 1').get()
    if (!row) throw new Error('relay_clock has no row: the database was not migrated')
    this.#monotonic = monotonic
    // After a crash the saved reading can lag what rows already hold (it is saved every few
    // seconds): the clock carries on from the latest of them, so it never runs backwards.
    const latest = db
      .prepare<[], { ms: number | null }>(
        `SELECT MAX(MAX(COALESCE(rc_created_at, 0), COALESCE(rc_claimed_at, 0)),
                    MAX(COALESCE(rc_progress_at, 0), COALESCE(rc_finished_at, 0))) AS ms
         FROM tasks`,
      )
      .get()
    this.#base = Math.max(row.ms, latest?.ms ?? 0)
    this.#startedAt = monotonic()
    this.#savedAt = row.ms
    this.#save = db.prepare('UPDATE relay_clock SET ms = ? WHERE id = 1 AND ms < ?')
  }

  /** The relay clock now, in ms (whole, never lower than a reading before). */
  now(): number {
    return this.#base + Math.floor(this.#monotonic() - this.#startedAt)
  }

  /** Written back from the tick, at most every few seconds (a commit is an fsync). */
  tick(): void {
    const now = this.now()
    if (now - this.#savedAt < PERSIST_EVERY_MS) return
    // Tried once per interval even when the write fails (a full disk): no retry every tick.
    this.#savedAt = now
    this.persist()
  }

  /** Written back now (at shutdown). */
  persist(): void {
    const now = this.now()
    this.#save.run(now, now)
    this.#savedAt = now
  }
}
