/**
 * Retained topics for admins (MQTT Explorer), written by one subscriber of the task event stream
 * (task-outbox.ts): `relay/tasks/{id}` holds a task's snapshot while it is queued or running and
 * is cleared (an empty retained payload) when it ends, so a subscription to `relay/tasks/+` reads
 * only the active tasks, never every task ever kept; `relay/queue` is the coalesced summary.
 * Publishing is best-effort and never blocks a state change; SQLite stays the truth.
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { TaskOutbox } from './task-outbox.js'
import type { TaskRow, TaskStore } from './task-store.js'
import { publish } from '../lib/mqtt.js'
import {
  PROTOCOL_VERSION,
  encodePayload,
  type QueueSnapshot,
  type TaskEvent,
  type TaskSnapshot,
  type Topics,
} from '../protocol/index.js'

export interface AdminTopicsDeps {
  readonly client: MqttClient
  readonly topics: Topics
  readonly log: Logger
  readonly outbox: TaskOutbox
  readonly store: TaskStore
  /** The queue summary (task-service.ts). */
  readonly queue: () => Omit<QueueSnapshot, 'v'>
}

export function taskSnapshot(row: TaskRow): TaskSnapshot {
  return {
    v: PROTOCOL_VERSION,
    taskId: row.id,
    state: row.state,
    attempt: row.attempt,
    gpuId: row.gpu_id,
    progress: row.progress,
    stage: row.stage,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
    errorMsg: row.error_msg,
  }
}

export class AdminTopics {
  readonly #d: AdminTopicsDeps
  readonly #unsubscribe: () => void
  #queueTimer: NodeJS.Timeout | undefined
  #lastQueue = ''
  #closed = false

  constructor(deps: AdminTopicsDeps) {
    this.#d = deps
    this.#unsubscribe = deps.outbox.subscribe((event) => {
      this.#onEvent(event)
    })
  }

  /** GPU presence changed: the queue summary's GPU counts with it. */
  queueChanged(): void {
    if (this.#closed) return
    this.#queueTimer ??= setTimeout(() => {
      this.#queueTimer = undefined
      const body = JSON.stringify({ v: PROTOCOL_VERSION, ...this.#d.queue() })
      if (body === this.#lastQueue) return
      this.#lastQueue = body
      this.#send(this.#d.topics.queue, Buffer.from(body))
    }, 200)
  }

  close(): void {
    this.#closed = true
    this.#unsubscribe()
    clearTimeout(this.#queueTimer)
    this.#queueTimer = undefined
  }

  #onEvent(event: TaskEvent): void {
    if (this.#closed) return
    const topic = this.#d.topics.task(event.taskId)
    if (event.state === 'queued' || event.state === 'processing') {
      const row = this.#d.store.get(event.taskId)
      // A later event of the same task follows when the row moved on meanwhile.
      if (row && (row.state === 'queued' || row.state === 'processing')) {
        this.#send(topic, encodePayload(taskSnapshot(row)))
      }
    } else {
      // Ended, or purged (which also clears what a gateway from before kept for ended tasks).
      this.#send(topic, Buffer.alloc(0))
    }
    if (event.kind !== 'progress' && event.kind !== 'result-stored') this.queueChanged()
  }

  #send(topic: string, payload: Buffer): void {
    publish(this.#d.client, { topic, payload, qos: 1, retain: true }).catch((err: unknown) => {
      this.#d.log.debug({ err, topic }, 'admin snapshot not published')
    })
  }
}
