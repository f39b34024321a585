/**
 * The task event outbox (docs/design.md §3.7). The lifecycle appends one row per change of a task
 * inside the change's own transaction, then hands the committed events to `notify`, which passes
 * them to in-process subscribers. Readers that were away (a server-sent events client, a restart)
 * resume from an id with `after`: the table, not memory, is the stream.
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import {
  PROTOCOL_VERSION,
  Stage,
  TaskEventKind,
  TaskState,
  type TaskEvent,
} from '../protocol/index.js'

/** What the lifecycle records; the outbox adds the id. */
export interface NewTaskEvent {
  readonly kind: TaskEventKind
  readonly taskId: string
  readonly attempt: number
  /** Wall-clock ms (display) and relay-clock ms (relay-clock.ts). */
  readonly at: number
  readonly rcAt: number
  readonly from: TaskState | null
  readonly state: TaskState | null
  readonly gpuId: string | null
  readonly progress?: number
  readonly stage?: Stage
  readonly note?: string
}

export type TaskEventListener = (event: TaskEvent) => void

interface EventRow {
  id: number
  task_id: string
  kind: string
  at: number
  attempt: number
  from_state: string | null
  to_state: string | null
  gpu_id: string | null
  data: string
}

const NOTE_MAX = 500

export class TaskOutbox {
  readonly #insert: Statement<
    [string, string, number, number, number, string | null, string | null, string | null, string]
  >
  readonly #after: Statement<[number, number], EventRow>
  readonly #ofTask: Statement<[string], EventRow>
  readonly #ofTaskAfter: Statement<[string, number, number], EventRow>
  readonly #latest: Statement<[], { id: number | null }>
  readonly #purge: Statement<[string]>
  readonly #forgetPurged: Statement<[number]>
  readonly #listeners = new Set<TaskEventListener>()
  readonly #onListenerError: (err: unknown) => void

  /** `onListenerError`: a subscriber that throws is reported there and the others still run. */
  constructor(db: Db, onListenerError: (err: unknown) => void) {
    this.#onListenerError = onListenerError
    this.#insert = db.prepare(
      `INSERT INTO task_events (task_id, kind, at, rc_at, attempt, from_state, to_state, gpu_id, data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.#after = db.prepare('SELECT * FROM task_events WHERE id > ? ORDER BY id LIMIT ?')
    this.#ofTask = db.prepare('SELECT * FROM task_events WHERE task_id = ? ORDER BY id')
    this.#ofTaskAfter = db.prepare(
      'SELECT * FROM task_events WHERE task_id = ? AND id > ? ORDER BY id LIMIT ?',
    )
    this.#latest = db.prepare('SELECT MAX(id) AS id FROM task_events')
    this.#purge = db.prepare('DELETE FROM task_events WHERE task_id = ?')
    this.#forgetPurged = db.prepare("DELETE FROM task_events WHERE kind = 'purged' AND rc_at <= ?")
  }

  /** Record one event; call inside the transaction that makes the change. */
  append(e: NewTaskEvent): TaskEvent {
    const data: Record<string, string | number> = {}
    if (e.progress !== undefined) data['progress'] = e.progress
    if (e.stage !== undefined) data['stage'] = e.stage
    if (e.note !== undefined) data['note'] = e.note.slice(0, NOTE_MAX)
    const { lastInsertRowid } = this.#insert.run(
      e.taskId,
      e.kind,
      e.at,
      e.rcAt,
      e.attempt,
      e.from,
      e.state,
      e.gpuId,
      JSON.stringify(data),
    )
    return toEvent({
      id: Number(lastInsertRowid),
      task_id: e.taskId,
      kind: e.kind,
      at: e.at,
      attempt: e.attempt,
      from_state: e.from,
      to_state: e.state,
      gpu_id: e.gpuId,
      data: JSON.stringify(data),
    })
  }

  /** After commit: hand the events to every subscriber, in order. Never throws. */
  notify(events: readonly TaskEvent[]): void {
    for (const event of events) {
      for (const listener of this.#listeners) {
        try {
          listener(event)
        } catch (err) {
          this.#onListenerError(err)
        }
      }
    }
  }

  /** Committed events from now on; returns the unsubscribe. */
  subscribe(listener: TaskEventListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Subscribers now (tests: a closed stream leaves none behind). */
  get subscribers(): number {
    return this.#listeners.size
  }

  /** Up to `limit` events with an id above `id`, oldest first. */
  after(id: number, limit: number): TaskEvent[] {
    return this.#after.all(id, limit).map(toEvent)
  }

  /** One task's timeline, oldest first. */
  ofTask(taskId: string): TaskEvent[] {
    return this.#ofTask.all(taskId).map(toEvent)
  }

  /** Up to `limit` of one task's events with an id above `id`, oldest first. */
  ofTaskAfter(taskId: string, id: number, limit: number): TaskEvent[] {
    return this.#ofTaskAfter.all(taskId, id, limit).map(toEvent)
  }

  /** The newest event's id (0 when there is none). */
  latestId(): number {
    return this.#latest.get()?.id ?? 0
  }

  /**
   * A purge leaves one `purged` event, so a reader that was away learns the task went; those marks
   * are kept for one more retention period (relay-clock ms before `rcAt`), then dropped, so the
   * table holds nothing for ever. Returns how many went.
   */
  forgetPurgedBefore(rcAt: number): number {
    return this.#forgetPurged.run(rcAt).changes
  }

  /** Forget a purged task's events; call inside the purge's transaction. */
  purgeTask(taskId: string): void {
    this.#purge.run(taskId)
  }
}

const KINDS: ReadonlySet<string> = new Set(TaskEventKind.options)
const STATES: ReadonlySet<string> = new Set(TaskState.options)
const STAGES: ReadonlySet<string> = new Set(Stage.options)

/** Rows are written only by `append`; read back by set membership (a hot path: no zod per row). */
function toEvent(row: EventRow): TaskEvent {
  let data: unknown
  try {
    data = JSON.parse(row.data)
  } catch {
    data = {}
  }
  const extra: Record<string, unknown> =
    data !== null && typeof data === 'object' ? { ...data } : {}
  const { progress, stage, note } = extra
  return {
    v: PROTOCOL_VERSION,
    id: row.id,
    // An unknown word is from a newer version of the gateway: read as progress.
    kind: KINDS.has(row.kind) ? (row.kind as TaskEventKind) : 'progress',
    taskId: row.task_id,
    attempt: row.attempt,
    at: new Date(row.at).toISOString(),
    from: stateOf(row.from_state),
    state: stateOf(row.to_state),
    gpuId: row.gpu_id,
    ...(typeof progress === 'number' && progress >= 0 && progress <= 100 ? { progress } : {}),
    ...(typeof stage === 'string' && STAGES.has(stage) ? { stage: stage as Stage } : {}),
    ...(typeof note === 'string' ? { note } : {}),
  }
}

function stateOf(word: string | null): TaskState | null {
  return word !== null && STATES.has(word) ? (word as TaskState) : null
}
