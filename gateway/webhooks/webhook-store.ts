/**
 * The webhook tables (gateway/db.ts): the one writer of `webhook_messages` (one per final event
 * to deliver: its body, signed anew per attempt; `pending` until `delivered` or `given-up`),
 * `webhook_deliveries` (one row per attempt) and `webhook_cursor` (the outbox id read up to).
 * A task's rows go with the task at retention (its `purged` event).
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from '../db.js'
import { parseWebhookUrl } from './url-guard.js'

export type MessageState = 'pending' | 'delivered' | 'given-up'
/** An attempt's outcome: `failed` is retried at `next_at`, `given-up` was the last one. */
export type DeliveryStatus = 'delivered' | 'failed' | 'given-up'

export interface MessageRow {
  readonly event_id: number
  readonly msg_id: string
  readonly task_id: string
  readonly url: string
  /** Host and port of the URL: attempts under way are bounded per receiver. */
  readonly receiver: string
  readonly body: string
  readonly state: MessageState
  readonly attempts: number
  readonly created_at: number
  readonly next_at: number | null
}

export interface DeliveryRow {
  readonly id: number
  readonly event_id: number
  readonly task_id: string
  readonly url: string
  readonly attempt: number
  readonly status: DeliveryStatus
  readonly http_status: number | null
  readonly error: string | null
  /** Wall-clock ms of the attempt. */
  readonly at: number
  /** When the next attempt is due; null after the last. */
  readonly next_at: number | null
}

export type NewDelivery = Omit<DeliveryRow, 'id'>

export class WebhookStore {
  readonly #db: Db
  readonly #cursor: Statement<[], { event_id: number }>
  readonly #setCursor: Statement<[number]>
  readonly #urlOf: Statement<[string], { webhook_url: string | null }>
  readonly #enqueue: Statement<[number, string, string, string, string, string, number, number]>
  readonly #due: Statement<[number, string, string], MessageRow>
  readonly #nextDue: Statement<[number], { at: number | null }>
  readonly #insertDelivery: Statement<
    [number, string, string, number, string, number | null, string | null, number, number | null]
  >
  readonly #updateMessage: Statement<[MessageState, number, number | null, number]>
  readonly #deliveriesOf: Statement<[string], DeliveryRow>
  readonly #hasRows: Statement<[string, string], { n: number }>
  readonly #forgetMessages: Statement<[string]>
  readonly #forgetDeliveries: Statement<[string]>

  constructor(db: Db) {
    this.#db = db
    this.#cursor = db.prepare('SELECT event_id FROM webhook_cursor WHERE id = 1')
    this.#setCursor = db.prepare('UPDATE webhook_cursor SET event_id = ? WHERE id = 1')
    this.#urlOf = db.prepare('SELECT webhook_url FROM tasks WHERE id = ?')
    this.#enqueue = db.prepare(
      `INSERT OR IGNORE INTO webhook_messages
         (event_id, msg_id, task_id, url, receiver, body, state, attempts, created_at, next_at)
       VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
    )
    // Leaving out the messages under way (or cooling down) and the receivers with all their
    // slots taken, so one receiver's backlog never hides another's due message.
    this.#due = db.prepare(
      `SELECT * FROM webhook_messages WHERE state = 'pending' AND next_at <= ?
         AND event_id NOT IN (SELECT value FROM json_each(?))
         AND receiver NOT IN (SELECT value FROM json_each(?))
       ORDER BY next_at, event_id LIMIT 1`,
    )
    this.#nextDue = db.prepare(
      "SELECT MIN(next_at) AS at FROM webhook_messages WHERE state = 'pending' AND next_at > ?",
    )
    this.#insertDelivery = db.prepare(
      `INSERT INTO webhook_deliveries
         (event_id, task_id, url, attempt, status, http_status, error, at, next_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    this.#updateMessage = db.prepare(
      'UPDATE webhook_messages SET state = ?, attempts = ?, next_at = ? WHERE event_id = ?',
    )
    this.#deliveriesOf = db.prepare(
      'SELECT * FROM webhook_deliveries WHERE task_id = ? ORDER BY id',
    )
    this.#hasRows = db.prepare(
      `SELECT EXISTS (SELECT 1 FROM webhook_messages WHERE task_id = ?)
         OR EXISTS (SELECT 1 FROM webhook_deliveries WHERE task_id = ?) AS n`,
    )
    this.#forgetMessages = db.prepare('DELETE FROM webhook_messages WHERE task_id = ?')
    this.#forgetDeliveries = db.prepare('DELETE FROM webhook_deliveries WHERE task_id = ?')
  }

  cursor(): number {
    return this.#cursor.get()?.event_id ?? 0
  }

  saveCursor(eventId: number): void {
    this.#setCursor.run(eventId)
  }

  /** The webhook URL a task was submitted with (null: none, or no such task). */
  webhookUrlOf(taskId: string): string | null {
    return this.#urlOf.get(taskId)?.webhook_url ?? null
  }

  /** A message to deliver now, and the cursor past its event, in one transaction. */
  enqueue(m: {
    readonly eventId: number
    readonly msgId: string
    readonly taskId: string
    readonly url: string
    readonly body: string
    readonly at: number
  }): void {
    this.#db.transaction(() => {
      this.#enqueue.run(m.eventId, m.msgId, m.taskId, m.url, receiverOf(m.url), m.body, m.at, m.at)
      this.#setCursor.run(m.eventId)
    })()
  }

  /** The oldest pending message due at `now`, but for these messages and receivers. */
  nextDue(
    now: number,
    but: { readonly eventIds: readonly number[]; readonly receivers: readonly string[] },
  ): MessageRow | undefined {
    return this.#due.get(now, JSON.stringify(but.eventIds), JSON.stringify(but.receivers))
  }

  /** When the next pending message after `now` is due (null: none). */
  nextDueAfter(now: number): number | null {
    return this.#nextDue.get(now)?.at ?? null
  }

  /** One attempt recorded and its message moved on, together. */
  record(
    d: NewDelivery,
    message: { readonly state: MessageState; readonly nextAt: number | null },
  ): DeliveryRow {
    return this.#db.transaction((): DeliveryRow => {
      const { lastInsertRowid } = this.#insertDelivery.run(
        d.event_id,
        d.task_id,
        d.url,
        d.attempt,
        d.status,
        d.http_status,
        d.error,
        d.at,
        d.next_at,
      )
      this.#updateMessage.run(message.state, d.attempt, message.nextAt, d.event_id)
      return { ...d, id: Number(lastInsertRowid) }
    })()
  }

  deliveriesOf(taskId: string): DeliveryRow[] {
    return this.#deliveriesOf.all(taskId)
  }

  /**
   * A purged task's messages and attempts go, and the cursor past its `purged` event; false
   * (nothing written) when it had none.
   */
  forgetTask(taskId: string, eventId: number): boolean {
    if (this.#hasRows.get(taskId, taskId)?.n !== 1) return false
    this.#db.transaction(() => {
      this.#forgetMessages.run(taskId)
      this.#forgetDeliveries.run(taskId)
      this.#setCursor.run(eventId)
    })()
    return true
  }
}

/** Host and port: what the per-receiver bound counts. */
export function receiverOf(url: string): string {
  const target = parseWebhookUrl(url)
  return target ? `${target.host}:${String(target.port)}` : url
}
