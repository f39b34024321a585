/**
 * From the outbox to webhook messages: each final event (done, a cache hit, failed, cancelled,
 * expired) of a task submitted with a `webhook_url` becomes one message, its body fixed then
 * (the same bytes on every retry). The outbox id read up to is the cursor: saved with every
 * message, and otherwise every 30 s and at close, so a restart reads on from there and misses
 * nothing (a message for an event already taken is ignored). Live events come from the outbox's
 * subscription; after a failed write (a full disk) it reads the table again from the cursor.
 */
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { TaskOutbox } from '../task-outbox.js'
import type { WebhookStore } from './webhook-store.js'
import type {
  TaskEvent,
  TaskState,
  TaskStatusData,
  WebhookEventType,
  WebhookPayload,
} from '../../protocol/index.js'

export interface IntakeDeps {
  readonly store: WebhookStore
  readonly outbox: Pick<TaskOutbox, 'after' | 'subscribe'>
  /** The task's status as the task API shows it, with `status` the event's; null: gone. */
  readonly statusOf: (taskId: string, state: TaskState) => TaskStatusData | null
  readonly log: Logger
  readonly now: () => number
  /** A message was queued: deliver it. */
  readonly onQueued: () => void
}

const FINAL_KINDS: ReadonlySet<string> = new Set([
  'done',
  'cache-hit',
  'failed',
  'cancelled',
  'expired',
])
const TYPES: Partial<Record<TaskState, WebhookEventType>> = {
  done: 'task.done',
  error: 'task.error',
  cancelled: 'task.cancelled',
  expired: 'task.expired',
}
const PAGE = 500
const SAVE_EVERY_MS = 30_000
const RETRY_MS = 5_000

export class WebhookIntake {
  readonly #d: IntakeDeps
  #cursor: number
  #saved: number
  #stalled = false
  #unsubscribe: (() => void) | null = null
  #retry: NodeJS.Timeout | undefined
  #saver: NodeJS.Timeout | undefined

  constructor(deps: IntakeDeps) {
    this.#d = deps
    this.#cursor = deps.store.cursor()
    this.#saved = this.#cursor
  }

  /** Read what came since the cursor, then follow the live events (synchronously: no gap). */
  start(): void {
    this.#drain()
    this.#unsubscribe = this.#d.outbox.subscribe((event) => {
      if (this.#stalled) return
      try {
        if (this.#take(event)) this.#d.onQueued()
      } catch (err) {
        this.#stall(err)
      }
    })
    this.#saver = setInterval(() => {
      this.#save()
    }, SAVE_EVERY_MS)
  }

  close(): void {
    this.#unsubscribe?.()
    clearTimeout(this.#retry)
    clearInterval(this.#saver)
    this.#save()
  }

  #drain(): void {
    let queued = false
    try {
      for (;;) {
        const events = this.#d.outbox.after(this.#cursor, PAGE)
        for (const event of events) queued = this.#take(event) || queued
        if (events.length < PAGE) break
      }
      this.#stalled = false
    } catch (err) {
      this.#stall(err)
    }
    if (queued) this.#d.onQueued()
  }

  #stall(err: unknown): void {
    this.#d.log.error({ err, cursor: this.#cursor }, 'webhook intake failed; reading again soon')
    this.#stalled = true
    clearTimeout(this.#retry)
    this.#retry = setTimeout(() => {
      this.#drain()
    }, RETRY_MS)
  }

  /** One event; true when it queued a message. Throws when a write fails (cursor not moved). */
  #take(event: TaskEvent): boolean {
    if (event.id <= this.#cursor) return false
    const { store } = this.#d
    if (event.kind === 'purged') {
      if (store.forgetTask(event.taskId, event.id)) this.#saved = event.id
      this.#cursor = event.id
      return false
    }
    const type = event.state === null ? undefined : TYPES[event.state]
    const url = FINAL_KINDS.has(event.kind) ? store.webhookUrlOf(event.taskId) : null
    const data =
      type !== undefined && url !== null && event.state !== null
        ? this.#d.statusOf(event.taskId, event.state)
        : null
    if (type === undefined || url === null || data === null) {
      this.#cursor = event.id
      return false
    }
    const payload: WebhookPayload = { type, timestamp: event.at, data }
    store.enqueue({
      eventId: event.id,
      msgId: `msg_${randomUUID().replaceAll('-', '')}`,
      taskId: event.taskId,
      url,
      body: JSON.stringify(payload),
      at: this.#d.now(),
    })
    this.#cursor = event.id
    this.#saved = event.id
    this.#d.log.info({ taskId: event.taskId, eventId: event.id, type }, 'webhook queued')
    return true
  }

  #save(): void {
    if (this.#cursor === this.#saved) return
    try {
      this.#d.store.saveCursor(this.#cursor)
      this.#saved = this.#cursor
    } catch (err) {
      this.#d.log.warn({ err }, 'webhook cursor not saved')
    }
  }
}
