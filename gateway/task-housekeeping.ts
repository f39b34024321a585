/**
 * The rows the clocks and the owner's actions touch (docs/design.md §4): cancel, manual retry, identical
 * submits, execution and stall timeouts, and retention. Each change is one transaction with its
 * transition record, like the rest of the task store.
 */
import type { Db } from './db.js'
import type { TaskRow } from './task-store.js'

export class TaskHousekeeping {
  readonly #db: Db

  constructor(db: Db) {
    this.#db = db
  }

  /** queued or processing → cancelled; the row as it was, or undefined if it could not be. */
  cancel(id: string, now: number, by: string): TaskRow | undefined {
    return this.#db.transaction(() => {
      const before = this.#get(id)
      if (!before || (before.state !== 'queued' && before.state !== 'processing')) return undefined
      this.#db
        .prepare(
          `UPDATE tasks SET state = 'cancelled', stage = NULL, updated_at = ?, finished_at = ?
           WHERE id = ? AND state = ?`,
        )
        .run(now, now, id, before.state)
      this.#transition(id, now, before.state, 'cancelled', before.attempt, before.gpu_id, by)
      return before
    })()
  }

  /** error → queued as a new attempt (the owner asks again). */
  retry(id: string, gpuId: string, now: number, expiresAt: number): boolean {
    return this.#db.transaction(() => {
      const before = this.#get(id)
      if (before?.state !== 'error') return false
      this.#db
        .prepare(
          `UPDATE tasks SET state = 'queued', attempt = attempt + 1, gpu_id = ?, progress = 0,
             stage = NULL, stage_message = NULL, last_seq = 0, claimed_at = NULL, finished_at = NULL,
             error_msg = NULL, updated_at = ?, expires_at = ?
           WHERE id = ? AND state = 'error'`,
        )
        .run(gpuId, now, expiresAt, id)
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
             result_size = ?, claimed_at = ?, finished_at = ?, updated_at = ?, gpu_id = NULL,
             published_attempt = attempt
           WHERE id = ? AND state = 'queued'`,
        )
        .run(from.result_hash, from.result_ext, from.result_size, now, now, now, id)
      this.#transition(id, now, 'queued', 'done', 1, null, `cache hit of ${from.id}`)
    })()
  }

  /** Running longer than the execution timeout. */
  overrunning(now: number, execTimeoutMs: number): TaskRow[] {
    return this.#db
      .prepare<[number], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'processing' AND claimed_at <= ? ORDER BY seq`,
      )
      .all(now - execTimeoutMs)
  }

  /**
   * At start-up: progress could not arrive while the gateway was down, so the stall clock of
   * running tasks starts again now rather than counting the outage as a hang.
   */
  restartStallClocks(now: number): void {
    this.#db.prepare(`UPDATE tasks SET progress_at = ? WHERE state = 'processing'`).run(now)
  }

  /** Progress (value or stage) unchanged for the stall timeout: the known HeyGem hang. */
  stalled(now: number, stallTimeoutMs: number): TaskRow[] {
    return this.#db
      .prepare<[number], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'processing'
           AND COALESCE(progress_at, claimed_at) <= ? ORDER BY seq`,
      )
      .all(now - stallTimeoutMs)
  }

  /** Finished tasks past retention. */
  expiredRetention(now: number, retentionMs: number): TaskRow[] {
    return this.#db
      .prepare<[number], TaskRow>(
        `SELECT * FROM tasks WHERE state IN ('done', 'error', 'cancelled', 'expired')
           AND finished_at <= ? ORDER BY seq LIMIT 500`,
      )
      .all(now - retentionMs)
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
