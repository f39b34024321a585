/**
 * Task rows: every state change is one SQLite statement (or transaction) and leaves a transition
 * record. The claim is the compare-and-set that makes "claim before run" hold (docs/design.md §3.2).
 * Wall-clock columns (`created_at`, `claimed_at`, …) are for display; every duration is measured on
 * the relay clock's `rc_*` columns (relay-clock.ts, docs/design.md §3.8).
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import type { FileRef, Stage, TaskState } from '../protocol/index.js'

export interface TaskRow {
  readonly seq: number
  readonly id: string
  readonly owner: string | null
  readonly source: string
  readonly state: TaskState
  readonly attempt: number
  readonly gpu_id: string | null
  readonly published_attempt: number
  readonly audio_hash: string
  readonly audio_ext: string
  readonly audio_size: number
  readonly video_hash: string
  readonly video_ext: string
  readonly video_size: number
  readonly options: string
  readonly progress: number
  readonly stage: Stage | null
  readonly stage_message: string | null
  readonly last_seq: number
  readonly result_hash: string | null
  readonly result_ext: string | null
  readonly result_size: number | null
  readonly error_msg: string | null
  readonly created_at: number
  readonly updated_at: number
  readonly claimed_at: number | null
  readonly finished_at: number | null
  readonly expires_at: number
  readonly claim_epoch: number | null
  readonly progress_at: number | null
  readonly request_key: string | null
  readonly current_frame: number | null
  readonly total_frames: number | null
  /** Relay-clock ms (relay-clock.ts): what durations are measured on. */
  readonly rc_created_at: number | null
  readonly rc_expires_at: number | null
  readonly rc_claimed_at: number | null
  readonly rc_progress_at: number | null
  readonly rc_finished_at: number | null
  /** The one result the GPU handed over for `stored_result_attempt` (docs/design.md §6). */
  readonly stored_result_attempt: number | null
  readonly stored_result_hash: string | null
  readonly stored_result_ext: string | null
  readonly stored_result_size: number | null
  readonly stored_result_type: string | null
  /** The content type the result is served with (null for results from before it was kept). */
  readonly result_type: string | null
}

/** A result a GPU handed over, as the pool stored it, and the content type to serve it with. */
export interface StoredResult extends FileRef {
  readonly type: string
}

export type RecordResultOutcome =
  | { readonly kind: 'stored' }
  | { readonly kind: 'already-stored'; readonly result: StoredResult }
  | { readonly kind: 'not-current' }

/** One progress event of the current attempt. */
export interface ProgressUpdate {
  readonly id: string
  readonly gpuId: string
  readonly attempt: number
  readonly seq: number
  readonly progress: number
  readonly stage: Stage
  readonly message: string | null
  readonly currentFrame: number | null
  readonly totalFrames: number | null
  readonly now: number
}

export interface NewTask {
  readonly id: string
  readonly owner: string | null
  readonly source: 'task-api' | 'heygem-api'
  readonly gpuId: string
  readonly audio: FileRef
  readonly video: FileRef
  readonly options: Readonly<Record<string, string | number | boolean>>
  readonly now: number
  readonly expiresAt: number
  /** Idempotency-Key / request_id: a repeated submit with the same key returns the same task. */
  readonly requestKey: string | null
}

export interface StateCounts {
  readonly queued: number
  readonly processing: number
}

export class TaskStore {
  readonly #db: Db
  readonly #get: Statement<[string], TaskRow>
  readonly #transition: Statement<
    [string, number, string | null, string, number, string | null, string | null]
  >

  readonly #relay: () => number

  /** `relay`: the relay clock's reading (relay-clock.ts). */
  constructor(db: Db, relay: () => number) {
    this.#db = db
    this.#relay = relay
    this.#get = db.prepare('SELECT * FROM tasks WHERE id = ?')
    this.#transition = db.prepare(
      'INSERT INTO task_transitions (task_id, at, from_state, to_state, attempt, gpu_id, note) VALUES (?, ?, ?, ?, ?, ?, ?)',
    )
  }

  get(id: string): TaskRow | undefined {
    return this.#get.get(id)
  }

  insert(task: NewTask): TaskRow {
    const relay = this.#relay()
    return this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO tasks (id, owner, source, state, attempt, gpu_id, audio_hash, audio_ext, audio_size,
             video_hash, video_ext, video_size, options, created_at, updated_at, expires_at, request_key,
             rc_created_at, rc_expires_at)
           VALUES (?, ?, ?, 'queued', 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          task.id,
          task.owner,
          task.source,
          task.gpuId,
          task.audio.hash,
          task.audio.ext,
          task.audio.size,
          task.video.hash,
          task.video.ext,
          task.video.size,
          JSON.stringify(task.options),
          task.now,
          task.now,
          task.expiresAt,
          task.requestKey,
          relay,
          // The TTL the caller asked for, on the relay clock.
          relay + (task.expiresAt - task.now),
        )
      this.#transition.run(task.id, task.now, null, 'queued', 1, task.gpuId, 'submitted')
      return this.#must(task.id)
    })()
  }

  markPublished(id: string, attempt: number): void {
    this.#db
      .prepare(
        'UPDATE tasks SET published_attempt = ? WHERE id = ? AND attempt = ? AND published_attempt < ?',
      )
      .run(attempt, id, attempt, attempt)
  }

  /** The claim: queued → processing, only for this GPU and this attempt. */
  claim(
    id: string,
    gpuId: string,
    attempt: number,
    seq: number,
    epoch: number,
    now: number,
  ): boolean {
    const relay = this.#relay()
    return this.#db.transaction(() => {
      const changed = this.#db
        .prepare(
          `UPDATE tasks SET state = 'processing', claimed_at = ?, updated_at = ?, last_seq = ?,
             claim_epoch = ?, progress_at = ?, progress = 0, stage = 'preparing', stage_message = NULL,
             rc_claimed_at = ?, rc_progress_at = ?
           WHERE id = ? AND state = 'queued' AND gpu_id = ? AND attempt = ? AND rc_expires_at > ?`,
        )
        .run(now, now, seq, epoch, now, relay, relay, id, gpuId, attempt, relay).changes
      if (changed === 1)
        this.#transition.run(id, now, 'queued', 'processing', attempt, gpuId, 'claimed')
      return changed === 1
    })()
  }

  /** The same GPU claimed its processing task again from a later connection. */
  reclaimed(id: string, attempt: number, epoch: number): void {
    this.#db
      .prepare(
        `UPDATE tasks SET claim_epoch = ? WHERE id = ? AND attempt = ? AND state = 'processing'
           AND (claim_epoch IS NULL OR claim_epoch < ?)`,
      )
      .run(epoch, id, attempt, epoch)
  }

  /** Progress of the current attempt, applied once: only a higher `seq` changes the row. */
  progress(u: ProgressUpdate): boolean {
    return (
      this.#db
        .prepare(
          `UPDATE tasks SET
             progress_at = CASE WHEN progress != ? OR stage IS NOT ? THEN ? ELSE progress_at END,
             rc_progress_at = CASE WHEN progress != ? OR stage IS NOT ? THEN ? ELSE rc_progress_at END,
             progress = ?, stage = ?, stage_message = ?, current_frame = ?, total_frames = ?,
             last_seq = ?, updated_at = ?
           WHERE id = ? AND state = 'processing' AND gpu_id = ? AND attempt = ? AND last_seq < ?`,
        )
        .run(
          u.progress,
          u.stage,
          u.now,
          u.progress,
          u.stage,
          this.#relay(),
          u.progress,
          u.stage,
          u.message,
          u.currentFrame,
          u.totalFrames,
          u.seq,
          u.now,
          u.id,
          u.gpuId,
          u.attempt,
          u.seq,
        ).changes === 1
    )
  }

  /**
   * The GPU's result hand-over (docs/design.md §6): one result per attempt, recorded only while
   * the attempt is this GPU's running one. A second one is refused, naming the first.
   */
  recordResult(o: {
    readonly id: string
    readonly gpuId: string
    readonly attempt: number
    readonly result: StoredResult
  }): RecordResultOutcome {
    const { id, gpuId, attempt, result } = o
    return this.#db.transaction((): RecordResultOutcome => {
      const row = this.get(id)
      if (row?.state !== 'processing' || row.gpu_id !== gpuId || row.attempt !== attempt) {
        return { kind: 'not-current' }
      }
      const stored = storedResultOf(row)
      if (stored) return { kind: 'already-stored', result: stored }
      this.#db
        .prepare(
          `UPDATE tasks SET stored_result_attempt = ?, stored_result_hash = ?, stored_result_ext = ?,
             stored_result_size = ?, stored_result_type = ?
           WHERE id = ? AND state = 'processing' AND gpu_id = ? AND attempt = ?`,
        )
        .run(attempt, result.hash, result.ext, result.size, result.type, id, gpuId, attempt)
      return { kind: 'stored' }
    })()
  }

  /**
   * processing → done with the result this GPU stored for this attempt; `result` (what its done
   * event names) must be that very file, else nothing changes.
   */
  finishDone(
    id: string,
    gpuId: string,
    attempt: number,
    seq: number,
    result: FileRef,
    now: number,
  ): boolean {
    const relay = this.#relay()
    return this.#db.transaction(() => {
      const changed = this.#db
        .prepare(
          `UPDATE tasks SET state = 'done', progress = 100, stage = NULL, stage_message = NULL, last_seq = ?,
             result_hash = stored_result_hash, result_ext = stored_result_ext,
             result_size = stored_result_size, result_type = stored_result_type, error_msg = NULL,
             updated_at = ?, finished_at = ?, rc_finished_at = ?
           WHERE id = ? AND state = 'processing' AND gpu_id = ? AND attempt = ?
             AND stored_result_attempt = ? AND stored_result_hash = ? AND stored_result_size = ?`,
        )
        .run(seq, now, now, relay, id, gpuId, attempt, attempt, result.hash, result.size).changes
      if (changed === 1) this.#transition.run(id, now, 'processing', 'done', attempt, gpuId, null)
      return changed === 1
    })()
  }

  /** A failure of the current attempt that is final. */
  finishError(id: string, attempt: number, message: string, now: number, note: string): boolean {
    return this.#db.transaction(() => {
      const before = this.get(id)
      if (
        !before ||
        before.attempt !== attempt ||
        !['queued', 'processing'].includes(before.state)
      ) {
        return false
      }
      this.#db
        .prepare(
          `UPDATE tasks SET state = 'error', stage = NULL, error_msg = ?, updated_at = ?, finished_at = ?,
             rc_finished_at = ?
           WHERE id = ? AND attempt = ?`,
        )
        .run(message, now, now, this.#relay(), id, attempt)
      this.#transition.run(id, now, before.state, 'error', attempt, before.gpu_id, note)
      return true
    })()
  }

  /** A retryable failure: back to queued as a new attempt, possibly on another GPU. */
  requeue(id: string, attempt: number, gpuId: string, reason: string, now: number): boolean {
    return this.#db.transaction(() => {
      const before = this.get(id)
      if (
        !before ||
        before.attempt !== attempt ||
        !['queued', 'processing'].includes(before.state)
      ) {
        return false
      }
      this.#db
        .prepare(
          `UPDATE tasks SET state = 'queued', attempt = attempt + 1, gpu_id = ?, progress = 0, stage = NULL,
             stage_message = NULL, current_frame = NULL, total_frames = NULL, last_seq = 0, claimed_at = NULL,
             rc_claimed_at = NULL, error_msg = ?, updated_at = ?
           WHERE id = ? AND attempt = ?`,
        )
        .run(gpuId, reason, now, id, attempt)
      this.#transition.run(id, now, before.state, 'queued', attempt + 1, gpuId, `retry: ${reason}`)
      return true
    })()
  }

  /** Move unclaimed work to another GPU; a stale message for the old GPU is then refused. */
  reassignQueued(fromGpuIds: readonly string[], toGpuId: string, now: number): number {
    if (fromGpuIds.length === 0) return 0
    const marks = fromGpuIds.map(() => '?').join(',')
    return this.#db
      .prepare(
        `UPDATE tasks SET gpu_id = ?, published_attempt = 0, updated_at = ?
         WHERE state = 'queued' AND (gpu_id IS NULL OR gpu_id IN (${marks}))`,
      )
      .run(toGpuId, now, ...fromGpuIds).changes
  }

  expire(id: string, now: number): boolean {
    return this.#db.transaction(() => {
      const before = this.get(id)
      if (before?.state !== 'queued') return false
      this.#db
        .prepare(
          `UPDATE tasks SET state = 'expired', updated_at = ?, finished_at = ?, rc_finished_at = ?
           WHERE id = ? AND state = 'queued'`,
        )
        .run(now, now, this.#relay(), id)
      this.#transition.run(id, now, 'queued', 'expired', before.attempt, before.gpu_id, null)
      return true
    })()
  }

  /** Queued tasks of one GPU, oldest first. */
  queuedFor(gpuId: string): TaskRow[] {
    return this.#db
      .prepare<[string], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'queued' AND gpu_id = ? ORDER BY seq`,
      )
      .all(gpuId)
  }

  processingOn(gpuId: string): TaskRow[] {
    return this.#db
      .prepare<[string], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'processing' AND gpu_id = ? ORDER BY seq`,
      )
      .all(gpuId)
  }

  /** Queued tasks of `gpuId` submitted before `seq` and not yet expired (relay clock). */
  olderQueued(gpuId: string, seq: number): TaskRow[] {
    return this.#db
      .prepare<[string, number, number], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'queued' AND gpu_id = ? AND seq < ? AND rc_expires_at > ?
         ORDER BY seq`,
      )
      .all(gpuId, seq, this.#relay())
  }

  /** Past its queue TTL, on the relay clock. */
  isExpired(row: TaskRow): boolean {
    return (row.rc_expires_at ?? row.expires_at) <= this.#relay()
  }

  /** Rows whose current attempt was committed but never published (a crash in between). */
  unpublished(): TaskRow[] {
    return this.#db
      .prepare<[], TaskRow>(
        `SELECT * FROM tasks WHERE state = 'queued' AND published_attempt < attempt ORDER BY seq`,
      )
      .all()
  }

  /** Is `hash` an input of a task assigned to `gpuId` that may still run? */
  isInputFor(hash: string, gpuId: string): boolean {
    const row = this.#db
      .prepare<[string, string, string], { n: number }>(
        `SELECT COUNT(*) AS n FROM tasks WHERE gpu_id = ? AND state IN ('queued', 'processing')
           AND (audio_hash = ? OR video_hash = ?)`,
      )
      .get(gpuId, hash, hash)
    return (row?.n ?? 0) > 0
  }

  /** An owner's tasks, newest first (all owners' for null). */
  history(owner: string | null, limit: number, offset: number): TaskRow[] {
    return this.#db
      .prepare<[string | null, string | null, number, number], TaskRow>(
        'SELECT * FROM tasks WHERE (? IS NULL OR owner = ?) ORDER BY seq DESC LIMIT ? OFFSET ?',
      )
      .all(owner, owner, limit, offset)
  }

  /** Every task in submit order (history, admin views, the demo's figures). */
  all(): TaskRow[] {
    return this.#db.prepare<[], TaskRow>('SELECT * FROM tasks ORDER BY seq').all()
  }

  /** Queued tasks past their queue TTL, on the relay clock. */
  dueToExpire(): string[] {
    return this.#db
      .prepare<[number], { id: string }>(
        `SELECT id FROM tasks WHERE state = 'queued' AND rc_expires_at <= ?`,
      )
      .all(this.#relay())
      .map((r) => r.id)
  }

  counts(): StateCounts {
    const rows = this.#db
      .prepare<[], { state: string; n: number }>(
        `SELECT state, COUNT(*) AS n FROM tasks WHERE state IN ('queued', 'processing') GROUP BY state`,
      )
      .all()
    return {
      queued: rows.find((r) => r.state === 'queued')?.n ?? 0,
      processing: rows.find((r) => r.state === 'processing')?.n ?? 0,
    }
  }

  /** 1-based place among all queued tasks, in submit order (0 when not queued). */
  queuePosition(task: TaskRow): number {
    if (task.state !== 'queued') return 0
    const row = this.#db
      .prepare<[number], { n: number }>(
        `SELECT COUNT(*) AS n FROM tasks WHERE state = 'queued' AND seq < ?`,
      )
      .get(task.seq)
    return (row?.n ?? 0) + 1
  }

  /** Load per GPU: queued + processing tasks assigned to it. */
  loadOf(gpuId: string): number {
    const row = this.#db
      .prepare<[string], { n: number }>(
        `SELECT COUNT(*) AS n FROM tasks WHERE state IN ('queued', 'processing') AND gpu_id = ?`,
      )
      .get(gpuId)
    return row?.n ?? 0
  }

  /** Mean run time (claim → done) of the last `n` successful tasks, in ms; null with no history. */
  recentRunMs(n = 20): number | null {
    const row = this.#db
      .prepare<[number], { avg: number | null }>(
        `SELECT AVG(rc_finished_at - rc_claimed_at) AS avg FROM (
           SELECT rc_finished_at, rc_claimed_at FROM tasks WHERE state = 'done'
             AND rc_claimed_at IS NOT NULL AND rc_finished_at IS NOT NULL
           ORDER BY finished_at DESC LIMIT ?)`,
      )
      .get(n)
    return row?.avg ?? null
  }

  transitions(id: string): {
    at: number
    from_state: string | null
    to_state: string
    attempt: number
    note: string | null
  }[] {
    return this.#db
      .prepare<
        [string],
        {
          at: number
          from_state: string | null
          to_state: string
          attempt: number
          note: string | null
        }
      >(
        'SELECT at, from_state, to_state, attempt, note FROM task_transitions WHERE task_id = ? ORDER BY id',
      )
      .all(id)
  }

  #must(id: string): TaskRow {
    const row = this.get(id)
    if (!row) throw new Error(`task ${id} vanished inside its own transaction`)
    return row
  }
}

/** The result recorded for the row's current attempt, if any. */
export function storedResultOf(row: TaskRow): StoredResult | null {
  if (
    row.stored_result_attempt !== row.attempt ||
    row.stored_result_hash === null ||
    row.stored_result_ext === null ||
    row.stored_result_size === null
  ) {
    return null
  }
  return {
    hash: row.stored_result_hash,
    ext: row.stored_result_ext,
    size: row.stored_result_size,
    type: row.stored_result_type ?? 'application/octet-stream',
  }
}
