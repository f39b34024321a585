/**
 * The one writer of the `tasks` table (docs/design.md §4). Every change of state is a named move of
 * the transition table (task-transitions.ts): one transaction holds the UPDATE, guarded by the
 * table's from-states, and the move's event in the outbox (task-outbox.ts); after the commit the
 * event reaches in-process subscribers. Progress and a stored result also write an event; the
 * published mark, the reclaim epoch and the stall-clock restart are bookkeeping without one.
 * The claim is the compare-and-set that makes "claim before run" hold (docs/design.md §3.2).
 * Wall-clock columns are for display; durations are measured on the `rc_*` columns (relay-clock.ts).
 */
import type { Logger } from 'pino'
import type { Db } from './db.js'
import { WriteBehind } from './write-behind.js'
import { silentLogger } from '../lib/logger.js'
import type { TaskOutbox } from './task-outbox.js'
import { storedResultOf, type StoredResult, type TaskRow } from './task-store.js'
import { lifecycleStatements, type LifecycleStatements } from './task-lifecycle-sql.js'
import { TRANSITIONS, allowedFrom, type TransitionName } from './task-transitions.js'
import type { FileRef, Stage, TaskEvent, TaskType } from '../protocol/index.js'

export interface NewTask {
  readonly id: string
  readonly owner: string | null
  readonly source: 'task-api' | 'heygem-api'
  readonly type: TaskType
  readonly audio: FileRef
  readonly video: FileRef
  readonly options: Readonly<Record<string, string | number | boolean>>
  /** Wall-clock ms at which the queue TTL runs out (display; the TTL runs on the relay clock). */
  readonly expiresAt: number
  /** Idempotency-Key / request_id: a repeated submit with the same key returns the same task. */
  readonly requestKey: string | null
  /** Seconds to its start as estimated at submit (kept to tell how good estimates are). */
  readonly estimatedStartS?: number
  /** Told of the task's end (gateway/webhooks/); checked before it gets here. */
  readonly webhookUrl?: string | null
}

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
}

export type RecordResultOutcome =
  | { readonly kind: 'stored' }
  | { readonly kind: 'already-stored'; readonly result: StoredResult }
  | { readonly kind: 'not-current' }

export interface LifecycleDeps {
  readonly db: Db
  readonly outbox: TaskOutbox
  /** Wall-clock ms (display columns). */
  readonly now: () => number
  /** The relay clock (relay-clock.ts): what durations are measured on. */
  readonly relay: () => number
  readonly log?: Logger
}

/** How long an offer's PUBACK waits to be written with the others (write-behind.ts). */
const PUBLISHED_DELAY_MS = 250

/** What a move did: the row before and after (undefined after a purge). */
export interface Moved {
  readonly before: TaskRow
  readonly after: TaskRow | undefined
}

export class TaskLifecycle {
  readonly #db: Db
  readonly #outbox: TaskOutbox
  readonly #now: () => number
  readonly #relay: () => number
  readonly #sql: LifecycleStatements
  readonly #published: WriteBehind<string, number>

  constructor(deps: LifecycleDeps) {
    this.#db = deps.db
    this.#outbox = deps.outbox
    this.#now = deps.now
    this.#relay = deps.relay
    this.#sql = lifecycleStatements(deps.db)
    // Read only by the start-up repair of "write, then publish": a PUBACK lost in a crash makes
    // that repair offer the task again, which the claim makes harmless (docs/guarantees.md).
    this.#published = new WriteBehind<string, number>({
      db: deps.db,
      write: (id, attempt) => this.#sql.published.run(attempt, id, attempt, attempt),
      merge: Math.max,
      delayMs: PUBLISHED_DELAY_MS,
      log: deps.log ?? silentLogger(),
      what: 'offer published',
    })
  }

  /** A new task, queued without a GPU: whoever claims it first runs it (docs/design.md §3.2). */
  submit(task: NewTask): TaskRow {
    return this.#insert({
      name: 'submit',
      task,
      write: () => {
        this.#sql.insertQueued.run(...this.#insertValues(task, TRANSITIONS.submit.to))
      },
    })
  }

  /** A new task born done with the result of `from`, an identical finished one. */
  cacheHit(task: NewTask, from: TaskRow): TaskRow {
    return this.#insert({
      name: 'cacheHit',
      task,
      write: () => {
        const now = this.#now()
        const relay = this.#relay()
        this.#sql.insertDone.run(
          ...this.#insertValues(task, TRANSITIONS.cacheHit.to),
          from.result_hash,
          from.result_ext,
          from.result_size,
          from.result_type,
          now,
          now,
          relay,
          relay,
        )
      },
      note: `cache hit of ${from.id}`,
    })
  }

  /** queued → processing on `gpuId`, for this attempt, before the queue TTL (relay clock). */
  claim(o: {
    readonly id: string
    readonly gpuId: string
    readonly attempt: number
    readonly seq: number
    readonly epoch: number
  }): Moved | undefined {
    const now = this.#now()
    const relay = this.#relay()
    return this.#move({
      name: 'claim',
      id: o.id,
      attempt: o.attempt,
      gpuId: o.gpuId,
      run: () =>
        this.#sql.update.claim.run(
          o.gpuId,
          now,
          now,
          o.seq,
          o.epoch,
          now,
          relay,
          relay,
          relay,
          o.id,
          o.attempt,
          relay,
        ),
    })
  }

  /** A retryable failure: queued again as a new attempt, offered to every GPU. */
  requeue(o: {
    readonly id: string
    readonly attempt: number
    readonly reason: string
  }): Moved | undefined {
    return this.#move({
      name: 'requeue',
      id: o.id,
      attempt: o.attempt,
      gpuId: null,
      note: `retry: ${o.reason}`,
      run: () => this.#sql.update.requeue.run(o.reason, this.#now(), o.id, o.attempt),
    })
  }

  /**
   * processing → done with the result this GPU stored for this attempt; `result` (what its done
   * event names) must be that very file, else nothing changes.
   */
  finish(o: {
    readonly id: string
    readonly gpuId: string
    readonly attempt: number
    readonly seq: number
    readonly result: FileRef
  }): Moved | undefined {
    const now = this.#now()
    return this.#move({
      name: 'finish',
      id: o.id,
      attempt: o.attempt,
      run: () =>
        this.#sql.update.finish.run(
          o.seq,
          now,
          now,
          this.#relay(),
          o.id,
          o.gpuId,
          o.attempt,
          o.attempt,
          o.result.hash,
          o.result.size,
        ),
    })
  }

  /** A failure of the current attempt that is final. */
  fail(o: {
    readonly id: string
    readonly attempt: number
    readonly message: string
    readonly note: string
  }): Moved | undefined {
    const now = this.#now()
    return this.#move({
      name: 'fail',
      id: o.id,
      attempt: o.attempt,
      note: o.note,
      run: () => this.#sql.update.fail.run(o.message, now, now, this.#relay(), o.id, o.attempt),
    })
  }

  /** queued or processing → cancelled (`by`: who asked, recorded as the note). */
  cancel(id: string, by: string): Moved | undefined {
    const now = this.#now()
    return this.#move({
      name: 'cancel',
      id,
      note: by,
      run: (before) => this.#sql.update.cancel.run(now, now, this.#relay(), id, before.attempt),
    })
  }

  /** queued → expired (the queue TTL ran out). */
  expire(id: string): Moved | undefined {
    const now = this.#now()
    return this.#move({
      name: 'expire',
      id,
      run: (before) => this.#sql.update.expire.run(now, now, this.#relay(), id, before.attempt),
    })
  }

  /** error → queued as a new attempt (the owner asks again), with a fresh queue TTL. */
  retry(id: string, ttlMs: number): Moved | undefined {
    const now = this.#now()
    return this.#move({
      name: 'retry',
      id,
      gpuId: null,
      note: 'manual retry',
      run: (before) =>
        this.#sql.update.retry.run(now, now + ttlMs, this.#relay() + ttlMs, id, before.attempt),
    })
  }

  /** A finished task past retention: the row and its events go; one `purged` event stays. */
  purge(id: string): Moved | undefined {
    return this.#move({
      name: 'purge',
      id,
      run: (before) => {
        const deleted = this.#sql.update.purge.run(id, before.attempt)
        if (deleted.changes === 1) this.#outbox.purgeTask(id)
        return deleted
      },
    })
  }

  /** The current attempt's message reached the broker (PUBACK); written with others shortly. */
  markPublished(id: string, attempt: number): void {
    this.#published.set(id, attempt)
  }

  /** Writes what is deferred now (shutdown). */
  flushDeferred(): void {
    this.#published.flush()
  }

  /** The same GPU claimed its processing task again from a later connection. */
  reclaimed(o: { readonly id: string; readonly attempt: number; readonly epoch: number }): void {
    this.#sql.reclaimed.run(o.epoch, o.id, o.attempt, o.epoch)
  }

  /** Progress of the current attempt, applied once: only a higher `seq` changes the row. */
  progress(u: ProgressUpdate): boolean {
    const now = this.#now()
    const relay = this.#relay()
    const event = this.#db.transaction((): TaskEvent | null => {
      const changed = this.#sql.progress.run(
        u.progress,
        u.stage,
        now,
        u.progress,
        u.stage,
        relay,
        u.progress,
        u.stage,
        u.message,
        u.currentFrame,
        u.totalFrames,
        u.seq,
        now,
        u.id,
        u.gpuId,
        u.attempt,
        u.seq,
      ).changes
      if (changed !== 1) return null
      return this.#outbox.append({
        kind: 'progress',
        taskId: u.id,
        attempt: u.attempt,
        at: now,
        rcAt: relay,
        from: 'processing',
        state: 'processing',
        gpuId: u.gpuId,
        progress: u.progress,
        stage: u.stage,
      })
    })()
    if (event) this.#outbox.notify([event])
    return event !== null
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
    const done = this.#db.transaction((): [RecordResultOutcome, TaskEvent | null] => {
      const row = this.#sql.get.get(id)
      if (row?.state !== 'processing' || row.gpu_id !== gpuId || row.attempt !== attempt) {
        return [{ kind: 'not-current' }, null]
      }
      const stored = storedResultOf(row)
      if (stored) return [{ kind: 'already-stored', result: stored }, null]
      this.#sql.storeResult.run(
        attempt,
        result.hash,
        result.ext,
        result.size,
        result.type,
        id,
        gpuId,
        attempt,
      )
      const event = this.#outbox.append({
        kind: 'result-stored',
        taskId: id,
        attempt,
        at: this.#now(),
        rcAt: this.#relay(),
        from: 'processing',
        state: 'processing',
        gpuId,
      })
      return [{ kind: 'stored' }, event]
    })()
    if (done[1]) this.#outbox.notify([done[1]])
    return done[0]
  }

  /**
   * At start-up: progress could not arrive while the gateway was down, so the stall clock of
   * running tasks starts again now rather than counting the last quiet moments before the
   * outage as part of a hang.
   */
  restartStallClocks(): void {
    this.#sql.restartStall.run(this.#relay())
  }

  #insertValues(task: NewTask, state: 'queued' | 'done'): (string | number | null)[] {
    const now = this.#now()
    const relay = this.#relay()
    return [
      task.id,
      task.owner,
      task.source,
      task.type,
      state,
      task.audio.hash,
      task.audio.ext,
      task.audio.size,
      task.video.hash,
      task.video.ext,
      task.video.size,
      JSON.stringify(task.options),
      now,
      now,
      task.expiresAt,
      task.requestKey,
      relay,
      // The TTL the caller asked for, on the relay clock.
      relay + (task.expiresAt - now),
      state === 'queued' && task.estimatedStartS !== undefined
        ? Math.round(task.estimatedStartS)
        : null,
      task.webhookUrl ?? null,
    ]
  }

  /** A move that creates the row (`from: [null]`): it fails if the id exists. */
  #insert(o: {
    readonly name: 'submit' | 'cacheHit'
    readonly task: NewTask
    readonly write: () => void
    readonly note?: string
  }): TaskRow {
    const { name, task, write, note } = o
    const t = TRANSITIONS[name]
    const [row, event] = this.#db.transaction((): [TaskRow, TaskEvent] => {
      if (this.#sql.get.get(task.id)) throw new Error(`task ${task.id} exists: ${name} refused`)
      write()
      const created = this.#sql.get.get(task.id)
      if (!created) throw new Error(`task ${task.id} vanished inside its own transaction`)
      const e = this.#outbox.append({
        kind: t.kind,
        taskId: task.id,
        attempt: created.attempt,
        at: created.created_at,
        rcAt: this.#relay(),
        from: null,
        state: t.to,
        gpuId: null,
        ...(note === undefined ? {} : { note }),
      })
      return [created, e]
    })()
    this.#outbox.notify([event])
    return row
  }

  /**
   * One move of an existing row: refused (nothing written) unless the table allows it from the
   * row's state and, when given, the attempt is the current one; else the guarded write and its
   * event commit together, and the event is handed to subscribers after the commit.
   */
  #move(o: {
    readonly name: Exclude<TransitionName, 'submit' | 'cacheHit'>
    readonly id: string
    readonly attempt?: number
    /** The GPU the event names; undefined: the row's (before the move, for a purge). */
    readonly gpuId?: string | null
    readonly note?: string
    readonly run: (before: TaskRow) => { readonly changes: number }
  }): Moved | undefined {
    const t = TRANSITIONS[o.name]
    const done = this.#db.transaction((): [Moved, TaskEvent] | undefined => {
      const before = this.#sql.get.get(o.id)
      if (!before || !allowedFrom(o.name, before.state)) return undefined
      if (o.attempt !== undefined && before.attempt !== o.attempt) return undefined
      if (o.run(before).changes !== 1) return undefined
      const after = this.#sql.get.get(o.id)
      const event = this.#outbox.append({
        kind: t.kind,
        taskId: o.id,
        attempt: after?.attempt ?? before.attempt,
        at: this.#now(),
        rcAt: this.#relay(),
        from: before.state,
        state: t.to,
        gpuId: o.gpuId === undefined ? (after?.gpu_id ?? before.gpu_id) : o.gpuId,
        ...(o.note === undefined ? {} : { note: o.note }),
      })
      return [{ before, after }, event]
    })()
    if (!done) return undefined
    this.#outbox.notify([done[1]])
    return done[0]
  }
}
