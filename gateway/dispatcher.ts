/**
 * The gateway's outbound side (docs/design.md §3): write then publish task messages, control messages to
 * bridges, and the outcomes every part shares (retry as a new attempt, fail for good, cancel).
 * Inbound bridge events are in bridge-events.ts, the birth reconcile in reconcile.ts, the clocks
 * in clocks.ts.
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { AdminTopics } from './admin-topics.js'
import type { GpuRegistry } from './gpu-registry.js'
import type { TaskRow, TaskStore } from './task-store.js'
import { errorMessage } from '../lib/errors.js'
import { publish } from '../lib/mqtt.js'
import {
  BridgeEvent,
  DEFAULT_TASK_TYPE,
  PROTOCOL_VERSION,
  encodePayload,
  type GpuControl,
  type TaskMessage,
  type Topics,
} from '../protocol/index.js'

export interface DispatcherDeps {
  readonly store: TaskStore
  readonly registry: GpuRegistry
  readonly client: MqttClient
  readonly topics: Topics
  readonly admin: AdminTopics
  readonly log: Logger
  readonly now: () => number
  /** The relay clock (relay-clock.ts): the re-publish intervals are measured on it. */
  readonly relay: () => number
  readonly maxAttempts: number
}

type EventOf<K extends BridgeEvent['kind']> = Extract<BridgeEvent, { kind: K }>

/** Don't re-publish the same task attempt more often than this when a claim says it is missing. */
const REPUBLISH_MIN_INTERVAL_MS = 2_000
/**
 * A birth re-publishes what its bridge does not hold, but the same attempt at most once in this
 * long: a flood of births (reconnects, rebirth answers) costs about two backlogs, not one a birth.
 * What a birth skipped is published once more when the interval is over, if still unclaimed (the
 * broker may have lost the earlier copy in between).
 */
const BIRTH_REPUBLISH_MIN_MS = 5_000

export class Dispatcher {
  readonly #d: DispatcherDeps
  readonly #lastRepublish = new Map<string, number>()
  /** When a birth last re-published each attempt (pruned as it goes). */
  readonly #birthRepublish = new Map<string, number>()
  /** Attempts a birth skipped, to publish again once the interval is over (`tick`). */
  readonly #skippedByBirth = new Map<
    string,
    { readonly taskId: string; readonly attempt: number }
  >()

  constructor(deps: DispatcherDeps) {
    this.#d = deps
  }

  /** Publish the current attempt of a queued task to its GPU; mark it published on PUBACK. */
  publishTask(task: TaskRow, why: string): void {
    const { topics, client, store, log } = this.#d
    if (task.state !== 'queued' || task.gpu_id === null) return
    const message: TaskMessage = {
      v: PROTOCOL_VERSION,
      taskId: task.id,
      attempt: task.attempt,
      order: task.seq,
      type: DEFAULT_TASK_TYPE,
      input: {
        audio: { hash: task.audio_hash, ext: task.audio_ext, size: task.audio_size },
        video: { hash: task.video_hash, ext: task.video_ext, size: task.video_size },
      },
      options: parseOptions(task.options),
      expiresAt: new Date(task.expires_at).toISOString(),
    }
    const gpuId = task.gpu_id
    this.#lastRepublish.set(`${task.id}:${task.attempt}`, this.#d.relay())
    publish(client, topics.gpuTasks(gpuId), encodePayload(message), { qos: 1 })
      .then(() => {
        store.markPublished(task.id, task.attempt)
        log.info({ taskId: task.id, gpuId, attempt: task.attempt, why }, 'task dispatched')
      })
      .catch((err: unknown) => {
        // Left unpublished: repaired at start-up or at the GPU's next birth.
        log.warn({ taskId: task.id, gpuId, err: errorMessage(err) }, 'task publish failed')
      })
  }

  /** Start-up repair of "write, then publish": rows committed but never published. */
  repairUnpublished(): number {
    const rows = this.#d.store.unpublished()
    for (const row of rows) this.publishTask(row, 'unpublished at start-up')
    if (rows.length > 0) this.#d.log.info({ count: rows.length }, 'unpublished tasks re-published')
    return rows.length
  }

  /** Ask a GPU seen online without a birth to publish one (so its holding can be reconciled). */
  requestRebirth(gpuId: string): void {
    this.control(gpuId, { v: PROTOCOL_VERSION, kind: 'rebirth' })
    this.#d.admin.queueChanged()
  }

  queueChanged(): void {
    this.#d.admin.queueChanged()
  }

  /** Stop the bridge following an attempt (cancelled, timed out, or no longer ours). */
  cancelOnGpu(gpuId: string, taskId: string, attempt: number, reason: string): void {
    this.control(gpuId, { v: PROTOCOL_VERSION, kind: 'cancel', taskId, attempt, reason })
  }

  forgetRepublish(taskId: string, attempt: number): void {
    this.#lastRepublish.delete(`${taskId}:${attempt}`)
    this.#birthRepublish.delete(`${taskId}:${attempt}`)
    this.#skippedByBirth.delete(`${taskId}:${attempt}`)
  }

  /** Re-publish for a birth, unless a birth did so for this attempt a moment ago. */
  republishForBirth(task: TaskRow): boolean {
    const key = `${task.id}:${task.attempt}`
    const now = this.#d.relay()
    const last = this.#birthRepublish.get(key)
    if (last !== undefined && now - last < BIRTH_REPUBLISH_MIN_MS) {
      this.#skippedByBirth.set(key, { taskId: task.id, attempt: task.attempt })
      return false
    }
    if (this.#birthRepublish.size >= 10_000) {
      for (const [k, at] of this.#birthRepublish) {
        if (now - at >= BIRTH_REPUBLISH_MIN_MS) this.#birthRepublish.delete(k)
      }
    }
    this.#birthRepublish.set(key, now)
    this.#skippedByBirth.delete(key)
    this.publishTask(task, 'reconcile')
    return true
  }

  /** Every second: publish what births skipped, once their interval is over, if still queued. */
  tick(): void {
    const now = this.#d.relay()
    // Entries past their interval decide nothing any more (a missing one reads as "long ago"):
    // dropped, so attempts that are never claimed (cancelled, expired, purged) leave nothing behind.
    for (const [key, at] of this.#lastRepublish) {
      if (now - at >= REPUBLISH_MIN_INTERVAL_MS || now < at) this.#lastRepublish.delete(key)
    }
    for (const [key, at] of this.#birthRepublish) {
      if (now - at >= BIRTH_REPUBLISH_MIN_MS || now < at) this.#birthRepublish.delete(key)
    }
    for (const [key, skipped] of this.#skippedByBirth) {
      if (now - (this.#birthRepublish.get(key) ?? 0) < BIRTH_REPUBLISH_MIN_MS) continue
      this.#skippedByBirth.delete(key)
      const row = this.#d.store.get(skipped.taskId)
      if (row?.state === 'queued' && row.attempt === skipped.attempt) this.republishForBirth(row)
    }
  }

  /** Retryable failure: a new attempt while attempts remain, else a final error. */
  retryOrFail(task: TaskRow, reason: string, note: string): void {
    const { store, registry, log, now, maxAttempts } = this.#d
    if (task.attempt >= maxAttempts) {
      this.fail(task, `${reason}（已重试 ${task.attempt} 次）`, note)
      return
    }
    const gpuId = registry.pick((id) => store.loadOf(id))
    if (!store.requeue(task.id, task.attempt, gpuId, reason, now())) return
    log.info({ taskId: task.id, attempt: task.attempt + 1, gpuId, reason: note }, 'task re-queued')
    const row = store.get(task.id)
    if (row) this.publishTask(row, 'retry')
    this.snapshot(task.id)
  }

  fail(task: TaskRow, message: string, note: string): void {
    const { store, log, now } = this.#d
    if (store.finishError(task.id, task.attempt, message, now(), note)) {
      log.warn({ taskId: task.id, attempt: task.attempt, message }, 'task error')
      this.snapshot(task.id)
    }
  }

  republishIfQuiet(task: TaskRow): void {
    const key = `${task.id}:${task.attempt}`
    const last = this.#lastRepublish.get(key) ?? 0
    if (this.#d.relay() - last < REPUBLISH_MIN_INTERVAL_MS) return
    this.publishTask(task, 'claim out of order')
  }

  /** Tell the bridge a done/error was applied (or is moot), so it stops re-sending it. */
  ack(gpuId: string, event: EventOf<'done'> | EventOf<'error'>): void {
    this.control(gpuId, {
      v: PROTOCOL_VERSION,
      kind: 'ack',
      taskId: event.taskId,
      attempt: event.attempt,
      seq: event.seq,
    })
  }

  control(gpuId: string, message: GpuControl): void {
    const { client, topics, log } = this.#d
    publish(client, topics.gpuControl(gpuId), encodePayload(message), { qos: 1 }).catch(
      (err: unknown) => {
        log.warn({ gpuId, kind: message.kind, err: errorMessage(err) }, 'control not published')
      },
    )
  }

  snapshot(taskId: string): void {
    const row = this.#d.store.get(taskId)
    if (row) this.#d.admin.task(row)
  }
}

function parseOptions(json: string): Record<string, string | number | boolean> {
  try {
    const value: unknown = JSON.parse(json)
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const out: Record<string, string | number | boolean> = {}
      for (const [k, v] of Object.entries(value)) {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = v
      }
      return out
    }
  } catch {
    // fall through
  }
  return {}
}
