/**
 * Reads of the task rows: what the HTTP API, the scheduler and the clocks look up. Nothing here
 * writes; every change of a row is a move of the lifecycle (task-lifecycle.ts). Durations are
 * measured on the relay clock's `rc_*` columns (relay-clock.ts, docs/design.md §3.8).
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import type { FileRef, Stage, TaskState } from '../protocol/index.js'
export interface TaskRow {
  readonly seq: number
  readonly id: string
  readonly owner: string | null
  readonly source: string
  /** The task type (docs/design.md §10): only GPUs that run it are offered the task. */
  readonly type: string
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
  /** Seconds to its start as estimated at submit; its first claim (relay ms). */
  readonly est_start_s: number | null
  readonly rc_started_at: number | null
}

/** A result a GPU handed over, as the pool stored it, and the content type to serve it with. */
export interface StoredResult extends FileRef {
  readonly type: string
}

export interface StateCounts {
  readonly queued: number
  readonly processing: number
}

export interface TaskStoreDeps {
  readonly db: Db
  /** The relay clock's reading (relay-clock.ts). */
  readonly relay: () => number
  /** The task types a GPU runs (its last birth's `types`). */
  readonly typesOf: (gpuId: string) => readonly string[]
}

type Rows<P extends unknown[]> = Statement<P, TaskRow>
type Count<P extends unknown[]> = Statement<P, { n: number }>

export class TaskStore {
  readonly #relay: () => number
  readonly #typesOf: (gpuId: string) => readonly string[]
  readonly #get: Rows<[string]>
  readonly #unpublished: Rows<[]>
  readonly #inputFor: Count<[string, string, string, string]>
  readonly #history: Rows<[string | null, string | null, number, number]>
  readonly #all: Rows<[]>
  readonly #dueToExpire: Statement<[number], { id: string }>
  readonly #counts: Statement<[], { state: string; n: number }>
  readonly #position: Count<[number]>
  readonly #byRequestKey: Rows<[string | null, string]>
  readonly #doneWithInputs: Rows<[string, string, string]>
  readonly #overrunning: Rows<[number]>
  readonly #stalled: Rows<[number]>
  readonly #retention: Rows<[number]>
  readonly #processingOn: Rows<[string]>
  readonly #processingCount: Count<[string]>
  readonly #queuedOfTypes: Rows<[string, number, number, number]>
  readonly #anyQueuedOfTypes: Count<[string, number]>

  constructor(deps: TaskStoreDeps) {
    const { db } = deps
    this.#relay = deps.relay
    this.#typesOf = deps.typesOf
    this.#get = db.prepare('SELECT * FROM tasks WHERE id = ?')
    this.#unpublished = db.prepare(
      `SELECT * FROM tasks WHERE state = 'queued' AND published_attempt < attempt ORDER BY seq`,
    )
    this.#inputFor = db.prepare(
      `SELECT COUNT(*) AS n FROM tasks
       WHERE ((state = 'queued' AND type IN (SELECT value FROM json_each(?)))
           OR (state = 'processing' AND gpu_id = ?))
         AND (audio_hash = ? OR video_hash = ?)`,
    )
    this.#history = db.prepare(
      'SELECT * FROM tasks WHERE (? IS NULL OR owner = ?) ORDER BY seq DESC LIMIT ? OFFSET ?',
    )
    this.#all = db.prepare('SELECT * FROM tasks ORDER BY seq')
    this.#dueToExpire = db.prepare(
      `SELECT id FROM tasks WHERE state = 'queued' AND rc_expires_at <= ?`,
    )
    this.#counts = db.prepare(
      `SELECT state, COUNT(*) AS n FROM tasks WHERE state IN ('queued', 'processing') GROUP BY state`,
    )
    this.#position = db.prepare(
      `SELECT COUNT(*) AS n FROM tasks WHERE state = 'queued' AND seq < ?`,
    )
    this.#byRequestKey = db.prepare(
      `SELECT * FROM tasks WHERE COALESCE(owner, '') = COALESCE(?, '') AND request_key = ?`,
    )
    this.#doneWithInputs = db.prepare(
      `SELECT * FROM tasks WHERE state = 'done' AND audio_hash = ? AND video_hash = ?
         AND options = ? AND result_hash IS NOT NULL
       ORDER BY finished_at DESC LIMIT 1`,
    )
    this.#overrunning = db.prepare(
      `SELECT * FROM tasks WHERE state = 'processing' AND rc_claimed_at <= ? ORDER BY seq`,
    )
    this.#stalled = db.prepare(
      `SELECT * FROM tasks WHERE state = 'processing'
         AND COALESCE(rc_progress_at, rc_claimed_at) <= ? ORDER BY seq`,
    )
    this.#retention = db.prepare(
      `SELECT * FROM tasks WHERE state IN ('done', 'error', 'cancelled', 'expired')
         AND rc_finished_at <= ? ORDER BY seq LIMIT 500`,
    )
    this.#processingOn = db.prepare(
      `SELECT * FROM tasks WHERE state = 'processing' AND gpu_id = ? ORDER BY seq`,
    )
    this.#processingCount = db.prepare(
      `SELECT COUNT(*) AS n FROM tasks WHERE state = 'processing' AND gpu_id = ?`,
    )
    this.#queuedOfTypes = db.prepare(
      `SELECT * FROM tasks WHERE state = 'queued' AND type IN (SELECT value FROM json_each(?))
         AND seq < ? AND rc_expires_at > ? ORDER BY seq LIMIT ?`,
    )
    this.#anyQueuedOfTypes = db.prepare(
      `SELECT COUNT(*) AS n FROM (SELECT 1 FROM tasks WHERE state = 'queued'
         AND type IN (SELECT value FROM json_each(?)) AND rc_expires_at > ? LIMIT 1)`,
    )
  }

  get(id: string): TaskRow | undefined {
    return this.#get.get(id)
  }

  /** Past its queue TTL, on the relay clock. */
  isExpired(row: TaskRow): boolean {
    return (row.rc_expires_at ?? row.expires_at) <= this.#relay()
  }

  /** Rows whose current attempt was committed but never published (a crash in between). */
  unpublished(): TaskRow[] {
    return this.#unpublished.all()
  }

  /**
   * May `gpuId` fetch `hash`? Yes when it is an input of a queued task of a type the GPU runs
   * (it may claim it) or of a task running on it.
   */
  isInputFor(hash: string, gpuId: string): boolean {
    const types = JSON.stringify(this.#typesOf(gpuId))
    return (this.#inputFor.get(types, gpuId, hash, hash)?.n ?? 0) > 0
  }

  /** An owner's tasks, newest first (all owners' for null). */
  history(owner: string | null, limit: number, offset: number): TaskRow[] {
    return this.#history.all(owner, owner, limit, offset)
  }

  /** Every task in submit order (history, admin views, the demo's figures). */
  all(): TaskRow[] {
    return this.#all.all()
  }

  /** Queued tasks past their queue TTL, on the relay clock. */
  dueToExpire(): string[] {
    return this.#dueToExpire.all(this.#relay()).map((r) => r.id)
  }

  counts(): StateCounts {
    const rows = this.#counts.all()
    return {
      queued: rows.find((r) => r.state === 'queued')?.n ?? 0,
      processing: rows.find((r) => r.state === 'processing')?.n ?? 0,
    }
  }

  /** 1-based place among all queued tasks, in submit order (0 when not queued). */
  queuePosition(task: TaskRow): number {
    if (task.state !== 'queued') return 0
    return (this.#position.get(task.seq)?.n ?? 0) + 1
  }

  /** The task an owner already submitted under this request key. */
  byRequestKey(owner: string | null, key: string): TaskRow | undefined {
    return this.#byRequestKey.get(owner, key)
  }

  /** A finished task with the same inputs whose result is still kept (the GPU server's cache). */
  doneWithInputs(audioHash: string, videoHash: string, options: string): TaskRow | undefined {
    return this.#doneWithInputs.get(audioHash, videoHash, options)
  }

  /** Running longer than the execution timeout (relay clock: the gateway's downtime is not counted). */
  overrunning(execTimeoutMs: number): TaskRow[] {
    return this.#overrunning.all(this.#relay() - execTimeoutMs)
  }

  /** Progress (value or stage) unchanged for the stall timeout: the known HeyGem hang. */
  stalled(stallTimeoutMs: number): TaskRow[] {
    return this.#stalled.all(this.#relay() - stallTimeoutMs)
  }

  /** Finished tasks past retention (relay clock), at most 500 at a time. */
  expiredRetention(retentionMs: number): TaskRow[] {
    return this.#retention.all(this.#relay() - retentionMs)
  }

  processingOn(gpuId: string): TaskRow[] {
    return this.#processingOn.all(gpuId)
  }

  processingCount(gpuId: string): number {
    return this.#processingCount.get(gpuId)?.n ?? 0
  }

  /**
   * The oldest queued, unexpired tasks of these types (submit order), at most `limit`; with
   * `before`, only those submitted before that `seq`.
   */
  queuedOfTypes(
    types: readonly string[],
    limit: number,
    before = Number.MAX_SAFE_INTEGER,
  ): TaskRow[] {
    return this.#queuedOfTypes.all(JSON.stringify(types), before, this.#relay(), limit)
  }

  /** Is any unexpired task of these types queued? */
  anyQueuedOfTypes(types: readonly string[]): boolean {
    return (this.#anyQueuedOfTypes.get(JSON.stringify(types), this.#relay())?.n ?? 0) > 0
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
