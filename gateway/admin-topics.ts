/**
 * Retained topics for admins (MQTT Explorer): one snapshot per task and the queue summary.
 * Publishing is best-effort and never blocks a state change; SQLite stays the truth.
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { TaskRow } from './task-store.js'
import { publish } from '../lib/mqtt.js'
import {
  PROTOCOL_VERSION,
  encodePayload,
  type QueueSnapshot,
  type TaskSnapshot,
  type Topics,
} from '../protocol/index.js'

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
  readonly #client: MqttClient
  readonly #topics: Topics
  readonly #log: Logger
  readonly #queue: () => Omit<QueueSnapshot, 'v'>
  #queueTimer: NodeJS.Timeout | undefined
  #lastQueue = ''
  #closed = false

  constructor(
    client: MqttClient,
    topics: Topics,
    log: Logger,
    queue: () => Omit<QueueSnapshot, 'v'>,
  ) {
    this.#client = client
    this.#topics = topics
    this.#log = log
    this.#queue = queue
  }

  task(row: TaskRow): void {
    if (this.#closed) return
    this.#send(this.#topics.task(row.id), encodePayload(taskSnapshot(row)))
    this.queueChanged()
  }

  /** A purged task: its retained snapshot is cleared (an empty retained payload). */
  clearTask(taskId: string): void {
    if (this.#closed) return
    this.#send(this.#topics.task(taskId), Buffer.alloc(0))
    this.queueChanged()
  }

  /** Coalesce bursts of changes into one retained queue message. */
  queueChanged(): void {
    if (this.#closed) return
    this.#queueTimer ??= setTimeout(() => {
      this.#queueTimer = undefined
      const body = JSON.stringify({ v: PROTOCOL_VERSION, ...this.#queue() })
      if (body === this.#lastQueue) return
      this.#lastQueue = body
      this.#send(this.#topics.queue, Buffer.from(body))
    }, 200)
  }

  close(): void {
    this.#closed = true
    clearTimeout(this.#queueTimer)
    this.#queueTimer = undefined
  }

  #send(topic: string, payload: Buffer): void {
    publish(this.#client, topic, payload, { qos: 1, retain: true }).catch((err: unknown) => {
      this.#log.debug({ err, topic }, 'admin snapshot not published')
    })
  }
}
