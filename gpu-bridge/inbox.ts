/**
 * The bridge's durable inbox (docs/design.md §3.5): received → claiming → running (with the GPU service's
 * task id) → finished (terminal event not yet acknowledged). A row is written before its MQTT
 * message is acknowledged, so nothing received is lost by a crash; after a restart the bridge
 * resumes from here. The connection epoch lives here too.
 */
import Database from 'better-sqlite3'
import { BridgeEvent, MAX_HOLDING, TaskMessage, type Holding } from '../protocol/index.js'

/** No claim backoff the runner sets is longer than this (runner.ts waits 1 s after `not-next`). */
const MAX_CLAIM_BACKOFF_MS = 60_000

export type InboxPhase = 'received' | 'claiming' | 'running' | 'finished'

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

interface RawRow {
  task_id: string
  attempt: number
  ord: number
  phase: InboxPhase
  message: string
  service_task_id: string | null
  submit_started: number
  final_event: string | null
  not_before: number
}

export type ReceiveOutcome = 'new' | 'duplicate' | 'stale' | 'replaced'

export class Inbox {
  readonly #db: Database.Database
  readonly #onCorrupt: (taskId: string) => void

  constructor(path: string, onCorrupt: (taskId: string) => void = () => undefined) {
    this.#onCorrupt = onCorrupt
    this.#db = new Database(path)
    this.#db.pragma('journal_mode = WAL')
    this.#db.pragma('synchronous = FULL')
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS inbox (
        task_id TEXT PRIMARY KEY,
        attempt INTEGER NOT NULL,
        ord INTEGER NOT NULL,
        phase TEXT NOT NULL,
        message TEXT NOT NULL,
        service_task_id TEXT,
        final_event TEXT,
        next_seq INTEGER NOT NULL DEFAULT 1,
        not_before INTEGER NOT NULL DEFAULT 0,
        received_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `)
    const columns = this.#db.prepare<[], { name: string }>('PRAGMA table_info(inbox)').all()
    if (!columns.some((c) => c.name === 'submit_started')) {
      this.#db.exec('ALTER TABLE inbox ADD COLUMN submit_started INTEGER NOT NULL DEFAULT 0')
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
      const row = this.#db
        .prepare<[], { value: number }>(`SELECT value FROM meta WHERE key = 'epoch'`)
        .get()
      const next = Math.max((row?.value ?? 0) + 1, Math.floor(now))
      this.#db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch', ?)`).run(next)
      return next
    })()
  }

  /** Durable receipt of a task message. A newer attempt replaces an older one. */
  receive(message: TaskMessage, now: number): ReceiveOutcome {
    return this.#db.transaction((): ReceiveOutcome => {
      const existing = this.get(message.taskId)
      if (existing && existing.attempt > message.attempt) return 'stale'
      if (existing && existing.attempt === message.attempt) return 'duplicate'
      this.#db
        .prepare(
          `INSERT OR REPLACE INTO inbox (task_id, attempt, ord, phase, message, received_at)
           VALUES (?, ?, ?, 'received', ?, ?)`,
        )
        .run(message.taskId, message.attempt, message.order, JSON.stringify(message), now)
      return existing ? 'replaced' : 'new'
    })()
  }

  get(taskId: string): InboxRow | undefined {
    const raw = this.#db
      .prepare<[string], RawRow>('SELECT * FROM inbox WHERE task_id = ?')
      .get(taskId)
    return raw ? this.#rows([raw])[0] : undefined
  }

  /** The current row of (taskId, attempt), if that attempt is the one held. */
  current(taskId: string, attempt: number): InboxRow | undefined {
    const row = this.get(taskId)
    return row?.attempt === attempt ? row : undefined
  }

  all(): InboxRow[] {
    return this.#rows(this.#db.prepare<[], RawRow>('SELECT * FROM inbox ORDER BY ord').all())
  }

  inPhase(phase: InboxPhase): InboxRow[] {
    return this.#rows(
      this.#db
        .prepare<[InboxPhase], RawRow>('SELECT * FROM inbox WHERE phase = ? ORDER BY ord')
        .all(phase),
    )
  }

  /**
   * The oldest received task that may be claimed now. A `not_before` further ahead than any
   * backoff the runner sets was written before the wall clock stepped back: it is over.
   */
  nextToClaim(now: number): InboxRow | undefined {
    const raw = this.#db
      .prepare<[number, number], RawRow>(
        `SELECT * FROM inbox WHERE phase = 'received' AND (not_before <= ? OR not_before > ?)
         ORDER BY ord LIMIT 1`,
      )
      .get(now, now + MAX_CLAIM_BACKOFF_MS)
    return raw ? this.#rows([raw])[0] : undefined
  }

  /** Allocate the next event sequence number of this attempt. */
  nextSeq(taskId: string, attempt: number): number {
    return this.#db.transaction(() => {
      const row = this.#db
        .prepare<[string, number], { next_seq: number }>(
          'SELECT next_seq FROM inbox WHERE task_id = ? AND attempt = ?',
        )
        .get(taskId, attempt)
      const seq = row?.next_seq ?? 1
      this.#db
        .prepare('UPDATE inbox SET next_seq = ? WHERE task_id = ? AND attempt = ?')
        .run(seq + 1, taskId, attempt)
      return seq
    })()
  }

  setPhase(taskId: string, attempt: number, phase: InboxPhase, notBefore = 0): void {
    this.#db
      .prepare('UPDATE inbox SET phase = ?, not_before = ? WHERE task_id = ? AND attempt = ?')
      .run(phase, notBefore, taskId, attempt)
  }

  markSubmitStarted(taskId: string, attempt: number): void {
    this.#db
      .prepare('UPDATE inbox SET submit_started = 1 WHERE task_id = ? AND attempt = ?')
      .run(taskId, attempt)
  }

  setServiceTaskId(taskId: string, attempt: number, serviceTaskId: string | null): void {
    this.#db
      .prepare('UPDATE inbox SET service_task_id = ? WHERE task_id = ? AND attempt = ?')
      .run(serviceTaskId, taskId, attempt)
  }

  finish(taskId: string, attempt: number, event: BridgeEvent): void {
    this.#db
      .prepare(
        `UPDATE inbox SET phase = 'finished', final_event = ? WHERE task_id = ? AND attempt = ?`,
      )
      .run(JSON.stringify(event), taskId, attempt)
  }

  remove(taskId: string, attempt: number): boolean {
    return (
      this.#db.prepare('DELETE FROM inbox WHERE task_id = ? AND attempt = ?').run(taskId, attempt)
        .changes === 1
    )
  }

  /** Rows that no longer parse are removed (and reported), never thrown out of a timer. */
  #rows(raws: RawRow[]): InboxRow[] {
    const rows: InboxRow[] = []
    for (const raw of raws) {
      const row = toRow(raw)
      if (row) {
        rows.push(row)
      } else {
        this.#db.prepare('DELETE FROM inbox WHERE task_id = ?').run(raw.task_id)
        this.#onCorrupt(raw.task_id)
      }
    }
    return rows
  }

  /** What the birth reports, so the gateway can reconcile (docs/design.md §3.3). */
  holding(): Holding[] {
    return this.all()
      .slice(0, MAX_HOLDING)
      .map((row) => ({
        taskId: row.taskId,
        attempt: row.attempt,
        phase: row.phase,
        ...(row.serviceTaskId === null ? {} : { serviceTaskId: row.serviceTaskId }),
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
