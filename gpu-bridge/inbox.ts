/**
 * The bridge's durable inbox (docs/design.md §3.5): received → claiming → running (with the GPU service's
 * task id) → finished (terminal event not yet acknowledged). A row is written before its MQTT
 * message is acknowledged, so nothing received is lost by a crash; after a restart the bridge
 * resumes from here. The connection epoch lives here too.
 */
import Database from 'better-sqlite3'
import { migrateInbox } from './inbox-schema.js'
import { prepareInbox, type InboxPhase, type RawRow, type Statements } from './inbox-statements.js'
import { BridgeEvent, MAX_HOLDING, TaskMessage, type Holding } from '../protocol/index.js'

/** No claim backoff the runner sets is longer than this (runner.ts waits 1 s after `not-next`). */
const MAX_CLAIM_BACKOFF_MS = 60_000

export type { InboxPhase }

export interface InboxRow {
  readonly taskId: string
  readonly attempt: number
  readonly order: number
  readonly phase: InboxPhase
  readonly message: TaskMessage
  readonly serviceTaskId: string | null
  /** The submit to the GPU service was started: it may have run even without a service id. */
  readonly submitStarted: boolean
  /** The terminal event waiting for the gateway's ack (phase `finished`). */
  readonly finalEvent: BridgeEvent | null
  /** Don't claim before this time (after a `not-next` refusal). */
  readonly notBefore: number
}

export type ReceiveOutcome = 'new' | 'duplicate' | 'stale' | 'replaced'

export class Inbox {
  readonly #db: Database.Database
  readonly #s: Statements
  readonly #onCorrupt: (taskId: string) => void

  constructor(path: string, onCorrupt: (taskId: string) => void = () => undefined) {
    this.#onCorrupt = onCorrupt
    this.#db = new Database(path)
    try {
      this.#db.pragma('journal_mode = WAL')
      this.#db.pragma('synchronous = FULL')
      migrateInbox(this.#db)
      this.#s = prepareInbox(this.#db)
    } catch (err) {
      this.#db.close()
      throw err
    }
  }

  /** Open and check the whole file; throws (closed) when SQLite finds it damaged. */
  static checked(path: string, onCorrupt: (taskId: string) => void): Inbox {
    let inbox: Inbox | undefined
    try {
      inbox = new Inbox(path, onCorrupt)
      const result = inbox.#db.pragma('quick_check', { simple: true })
      if (result !== 'ok') throw new Error(`inbox quick_check: ${String(result)}`)
      return inbox
    } catch (err) {
      try {
        inbox?.close()
      } catch {
        // already unusable
      }
      throw err
    }
  }

  close(): void {
    this.#db.close()
  }

  /**
   * Next connection epoch, persisted before it is used (docs/design.md §3.4). It never goes back, even if
   * this file is lost (a re-imaged GPU machine): at least the clock in ms, at least last + 1.
   */
  bumpEpoch(now: number): number {
    return this.#db.transaction(() => {
      const next = Math.max((this.#s.epoch.get()?.value ?? 0) + 1, Math.floor(now))
      this.#s.setEpoch.run(next)
      return next
    })()
  }

  /** Durable receipt of a task message. A newer attempt replaces an older one. */
  receive(message: TaskMessage, now: number): ReceiveOutcome {
    return this.#db.transaction((): ReceiveOutcome => {
      const existing = this.#s.get.get(message.taskId)
      if (existing && existing.attempt > message.attempt) return 'stale'
      if (existing && existing.attempt === message.attempt) return 'duplicate'
      this.#s.insert.run(
        message.taskId,
        message.attempt,
        message.order,
        JSON.stringify(message),
        now,
      )
      return existing ? 'replaced' : 'new'
    })()
  }

  get(taskId: string): InboxRow | undefined {
    const raw = this.#s.get.get(taskId)
    return raw ? this.#rows([raw])[0] : undefined
  }

  /** The current row of (taskId, attempt), if that attempt is the one held. */
  current(taskId: string, attempt: number): InboxRow | undefined {
    const row = this.get(taskId)
    return row?.attempt === attempt ? row : undefined
  }

  all(): InboxRow[] {
    return this.#rows(this.#s.all.all())
  }

  inPhase(phase: InboxPhase): InboxRow[] {
    return this.#rows(this.#s.inPhase.all(phase))
  }

  /** Tasks claimed or running: the slots in use. */
  busy(): number {
    return this.#s.busy.get()?.n ?? 0
  }

  /**
   * The oldest received task that may be claimed now. A `not_before` further ahead than any
   * backoff the runner sets was written before the wall clock stepped back: it is over.
   */
  nextToClaim(now: number): InboxRow | undefined {
    for (;;) {
      const raw = this.#s.nextToClaim.get(now, now + MAX_CLAIM_BACKOFF_MS)
      if (!raw) return undefined
      // An unreadable row is removed by #rows: look again rather than stop claiming.
      const row = this.#rows([raw])[0]
      if (row) return row
    }
  }

  /** Allocate the next event sequence number of this attempt. */
  nextSeq(taskId: string, attempt: number): number {
    return this.#db.transaction(() => {
      const seq = this.#s.seq.get(taskId, attempt)?.next_seq ?? 1
      this.#s.setSeq.run(seq + 1, taskId, attempt)
      return seq
    })()
  }

  /**
   * A claim leaves: the row becomes `claiming` and gets the claim's sequence number, in one
   * commit (one fsync per claim: a backlog of offers other GPUs took is refused one by one).
   */
  startClaim(taskId: string, attempt: number): number {
    return this.#db.transaction(() => {
      this.#s.setPhase.run('claiming', 0, taskId, attempt)
      return this.nextSeq(taskId, attempt)
    })()
  }

  setPhase(
    task: { readonly taskId: string; readonly attempt: number },
    phase: InboxPhase,
    notBefore = 0,
  ): void {
    const { taskId, attempt } = task
    this.#s.setPhase.run(phase, notBefore, taskId, attempt)
  }

  markSubmitStarted(taskId: string, attempt: number): void {
    this.#s.submitStarted.run(taskId, attempt)
  }

  setServiceTaskId(taskId: string, attempt: number, serviceTaskId: string | null): void {
    this.#s.serviceTaskId.run(serviceTaskId, taskId, attempt)
  }

  finish(taskId: string, attempt: number, event: BridgeEvent): void {
    this.#s.finish.run(JSON.stringify(event), taskId, attempt)
  }

  remove(taskId: string, attempt: number): boolean {
    return this.#s.remove.run(taskId, attempt).changes === 1
  }

  /**
   * Drop an offer the gateway refused (another GPU took it, or it ended), without an fsync of
   * its own: the next durable commit carries it to the disk (WAL frames are synced in order). If
   * the machine dies first, the offer comes back and is refused again; nothing else depends on
   * it. A backlog of thousands of offers other GPUs took is dropped at the pace of the claims.
   */
  drop(taskId: string, attempt: number): void {
    this.#db.pragma('synchronous = NORMAL')
    try {
      this.#s.remove.run(taskId, attempt)
    } finally {
      this.#db.pragma('synchronous = FULL')
    }
  }

  /** Rows that no longer parse are removed (and reported), never thrown out of a timer. */
  #rows(raws: RawRow[]): InboxRow[] {
    const rows: InboxRow[] = []
    for (const raw of raws) {
      const row = toRow(raw)
      if (row) {
        rows.push(row)
      } else {
        this.#s.removeTask.run(raw.task_id)
        this.#onCorrupt(raw.task_id)
      }
    }
    return rows
  }

  /**
   * What the birth reports, so the gateway can reconcile (docs/design.md §3.3): what we claimed,
   * run or finished first (the gateway re-queues a processing task a birth does not hold), then
   * the offers we hold, oldest first, up to the limit the contract allows.
   */
  holding(): Holding[] {
    return this.#s.holding.all(MAX_HOLDING).map((row) => ({
      taskId: row.task_id,
      attempt: row.attempt,
      phase: row.phase,
      ...(row.service_task_id === null ? {} : { serviceTaskId: row.service_task_id }),
    }))
  }
}

/** A stored row, or null when its JSON no longer fits the contract. */
function toRow(raw: RawRow): InboxRow | null {
  const message = TaskMessage.safeParse(parseJson(raw.message))
  const finalEvent =
    raw.final_event === null ? null : BridgeEvent.safeParse(parseJson(raw.final_event))
  if (!message.success || (finalEvent !== null && !finalEvent.success)) return null
  return {
    taskId: raw.task_id,
    attempt: raw.attempt,
    order: raw.ord,
    phase: raw.phase,
    message: message.data,
    serviceTaskId: raw.service_task_id,
    submitStarted: raw.submit_started === 1,
    finalEvent: finalEvent === null ? null : finalEvent.data,
    notBefore: raw.not_before,
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}
