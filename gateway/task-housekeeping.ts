/**
 * The rows the clocks and the owner's actions touch (docs/design.md §4): cancel, manual retry, identical
 * submits, execution and stall timeouts, and retention. Each change is one transaction with its
 * transition record, like the rest of the task store. The clocks measure on the relay clock's
 * `rc_*` columns (relay-clock.ts), never on the wall clock.
 */
import type { Db } from './db.js'
import type { TaskRow } from './task-store.js'

export class TaskHousekeeping {
  readonly #db: Db
  readonly #relay: () => number

  /** `relay`: the relay clock's reading (relay-clock.ts). */
  constructor(db: Db, relay: () => number) {
    this.#db = db
    this.#relay = relay
  }

  /** queued or processing → cancelled; the row as it was, or undefined if it could not be. */
  cancel(id: string, now: number, by: string): TaskRow | undefined {
    return this.#db.transaction(() => {
      const before = this.#get(id)
      if (!before || (before.state !== 'queued' && before.state !== 'processing')) return undefined
      this.#db
        .prepare(
          `UPDATE tasks SET state = 'cancelled', stage = NULL, updated_at = ?, finished_at = ?,
             rc_finished_at = ?
           WHERE id = ? AND state = ?`,
        )
        .run(now, now, this.#relay(), id, before.state)
      this.#transition(id, now, before.state, 'cancelled', before.attempt, before.gpu_id, by)
      return before
    })()
  }

  /** error → queued as a new attempt (the owner asks again). */
  retry(id: string, gpuId: string, now: number, expiresAt: number): boolean {
    const relay = this.#relay()
    return this.#db.transaction(() => {
      const before = this.#get(id)
      if (before?.state !== 'error') return false
      this.#db
        .prepare(
          `UPDATE tasks SET state = 'queued', attempt = attempt + 1, gpu_id = ?, progress = 0,
             stage = NULL, stage_message = NULL, last_seq = 0, claimed_at = NULL, finished_at = NULL,
             error_msg = NULL, updated_at = ?, expires_at = ?, rc_claimed_at = NULL,
             rc_finished_at = NULL, rc_expires_at = ?
           WHERE id = ? AND state = 'error'`,
        )
        .run(gpuId, now, expiresAt, relay + (expiresAt - now), id)
      this.#transition(id, now, 'error', 'queued', before.attempt + 1, gpuId, 'manual retry')
      return true
    })()
  }

  /** The task an owner already submitted under this request key. */
  byRequestKey(owner: string | null, key: string): TaskRow | undefined {
    return this.#db
      .prepare<[string | null, string], TaskRow>(
        `SELECT * FROM tasks WHERE COALESCE(owner, '') = COALESCE(?, '') AND request_key = ?`,
      )
      .get(owner, key)
  }

  /** A finished task with the same inputs whose result is still kept (the GPU server's cache). */
  doneWithInputs(audioHash: string, videoHash: string, options: string): TaskRow | undefined {
    return this.#db
      .prepare<[string, string, string], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'done' AND audio_hash = ? AND video_hash = ?
           AND options = ? AND result_hash IS NOT NULL
         ORDER BY finished_at DESC LIMIT 1`,
      )
      .get(audioHash, videoHash, options)
  }

  /** A new task that is born done with an earlier task's result. */
  markCacheHit(id: string, from: TaskRow, now: number): void {
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `UPDATE tasks SET state = 'done', progress = 100, result_hash = ?, result_ext = ?,
             result_size = ?, result_type = ?, claimed_at = ?, finished_at = ?, updated_at = ?,
             gpu_id = NULL, published_attempt = attempt, rc_claimed_at = ?, rc_finished_at = ?
           WHERE id = ? AND state = 'queued'`,
        )
        .run(
          from.result_hash,
          from.result_ext,
          from.result_size,
          from.result_type,
          now,
          now,
          now,
          this.#relay(),
          this.#relay(),
          id,
        )
      this.#transition(id, now, 'queued', 'done', 1, null, `cache hit of ${from.id}`)
    })()
  }

  /** Running longer than the execution timeout (relay clock: the gateway's downtime is not counted). */
  overrunning(execTimeoutMs: number): TaskRow[] {
    return this.#db
      .prepare<[number], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'processing' AND rc_claimed_at <= ? ORDER BY seq`,
      )
      .all(this.#relay() - execTimeoutMs)
  }

  /**
   * At start-up: progress could not arrive while the gateway was down, so the stall clock of
   * running tasks starts again now rather than counting the last quiet moments before the
   * outage as part of a hang.
   */
  restartStallClocks(): void {
    this.#db
      .prepare(`UPDATE tasks SET rc_progress_at = ? WHERE state = 'processing'`)
      .run(this.#relay())
  }

  /** Progress (value or stage) unchanged for the stall timeout: the known HeyGem hang. */
  stalled(stallTimeoutMs: number): TaskRow[] {
    return this.#db
      .prepare<[number], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'processing'
           AND COALESCE(rc_progress_at, rc_claimed_at) <= ? ORDER BY seq`,
      )
      .all(this.#relay() - stallTimeoutMs)
  }

  /** Finished tasks past retention (relay clock). */
  expiredRetention(retentionMs: number): TaskRow[] {
    return this.#db
      .prepare<[number], TaskRow>(
        `SELECT * FROM tasks WHERE state IN ('done', 'error', 'cancelled', 'expired')
           AND rc_finished_at <= ? ORDER BY seq LIMIT 500`,
      )
      .all(this.#relay() - retentionMs)
  }

  purge(id: string): void {
    this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM task_transitions WHERE task_id = ?').run(id)
      this.#db.prepare('DELETE FROM tasks WHERE id = ?').run(id)
    })()
  }

  #get(id: string): TaskRow | undefined {
    return this.#db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE id = ?').get(id)
  }

  #transition(
    id: string,
    at: number,
    from: string | null,
    to: string,
    attempt: number,
    gpuId: string | null,
    note: string,
  ): void {
    this.#db
      .prepare(
        `INSERT INTO task_transitions (task_id, at, from_state, to_state, attempt, gpu_id, note)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(id, at, from, to, attempt, gpuId, note)
  }
}
