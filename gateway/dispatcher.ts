/**
 * The gateway's outbound side (docs/design.md §3): offers of queued tasks, control messages to
 * bridges, and the outcomes every part shares (retry as a new attempt, fail for good). No GPU is
 * chosen here: a task is offered on `relay/offers/{type}` to every bridge that runs its type, and
 * the claim decides (bridge-events.ts). A bridge that lacks an offer it should have (a claim out
 * of order, a birth, an idle GPU while work waits: the safety net) is sent it on its own
 * `relay/gpus/{id}/tasks`, at most once per attempt per interval.
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { GpuRegistry } from './gpu-registry.js'
import type { TaskLifecycle } from './task-lifecycle.js'
import type { TaskRow, TaskStore } from './task-store.js'
import { errorMessage } from '../lib/errors.js'
import { publish } from '../lib/mqtt.js'
import {
  BridgeEvent,
  PROTOCOL_VERSION,
  TaskType,
  encodePayload,
  type GpuControl,
  type TaskMessage,
  type Topics,
} from '../protocol/index.js'

export interface DispatcherDeps {
  readonly store: TaskStore
  readonly lifecycle: TaskLifecycle
  readonly registry: GpuRegistry
  readonly client: MqttClient
  readonly topics: Topics
  readonly log: Logger
  /** The relay clock (relay-clock.ts): the send intervals are measured on it. */
  readonly relay: () => number
  readonly maxAttempts: number
}

type EventOf<K extends BridgeEvent['kind']> = Extract<BridgeEvent, { kind: K }>

/** Don't send one GPU the same attempt more often than this when its claim says it lacks it. */
const NOT_NEXT_MIN_INTERVAL_MS = 2_000
/**
 * A birth sends what its bridge does not hold, but the same attempt to the same GPU at most once
 * in this long: a flood of births (reconnects, rebirth answers) costs about two backlogs, not one
 * a birth. What a birth skipped is sent once more when the interval is over, if still queued.
 */
const BIRTH_MIN_INTERVAL_MS = 5_000
/** The safety net: a ready GPU with a free slot that has not claimed for this long… */
const SAFETY_QUIET_MS = 3_000
/** …is sent the oldest queued tasks of its types offered at least this long ago… */
const SAFETY_OFFER_AGE_MS = 3_000
/** …each attempt at most once in this long. */
const SAFETY_MIN_INTERVAL_MS = 5_000
/** The most older tasks one `not-next` refusal sends. */
const NOT_NEXT_MAX_SENT = 20

export class Dispatcher {
  readonly #d: DispatcherDeps
  /** `gpuId:taskId:attempt` → when it was last sent on the GPU's own topic (relay ms). */
  readonly #sent = new Map<string, number>()
  /** `taskId:attempt` → when it was offered (relay ms; pruned once old). */
  readonly #offeredAt = new Map<string, number>()
  /** GPU → when it last claimed or was born (relay ms). */
  readonly #lastClaim = new Map<string, number>()
  /** Sends a birth skipped, to make once their interval is over (`tick`). */
  readonly #skippedByBirth = new Map<
    string,
    { readonly gpuId: string; readonly taskId: string; readonly attempt: number }
  >()

  constructor(deps: DispatcherDeps) {
    this.#d = deps
  }

  /**
   * Offer the current attempt of a queued task to every GPU that runs its type; mark it
   * published on PUBACK. A bridge whose birth did not say it pulls offers is sent it directly.
   */
  offer(task: TaskRow, why: string): void {
    const { topics, client, lifecycle, log, registry } = this.#d
    if (task.state !== 'queued') return
    const type = TaskType.safeParse(task.type)
    if (!type.success) {
      log.error({ taskId: task.id, type: task.type }, 'task of an unknown type not offered')
      return
    }
    const message = taskMessage(task, type.data)
    this.#offeredAt.set(`${task.id}:${task.attempt}`, this.#d.relay())
    publish(client, { topic: topics.offers(type.data), payload: encodePayload(message), qos: 1 })
      .then(() => {
        lifecycle.markPublished(task.id, task.attempt)
        log.info({ taskId: task.id, attempt: task.attempt, type: task.type, why }, 'task offered')
      })
      .catch((err: unknown) => {
        // Left unpublished: offered again at start-up; the safety net covers idle GPUs meanwhile.
        log.warn({ taskId: task.id, err: errorMessage(err) }, 'task offer failed')
      })
    for (const gpu of registry.online()) {
      if (!gpu.pullsOffers && gpu.types.includes(type.data))
        this.#send({ gpuId: gpu.id, task, why, minIntervalMs: 0 })
    }
  }

  /** Start-up repair of "write, then publish": rows committed but never offered. */
  repairUnpublished(): number {
    const rows = this.#d.store.unpublished()
    for (const row of rows) this.offer(row, 'unpublished at start-up')
    if (rows.length > 0) this.#d.log.info({ count: rows.length }, 'unpublished tasks offered')
    return rows.length
  }

  /** Ask a GPU seen online without a birth to publish one (so its holding can be reconciled). */
  requestRebirth(gpuId: string): void {
    this.control(gpuId, { v: PROTOCOL_VERSION, kind: 'rebirth' })
  }

  /** A claim from `gpuId` arrived, or it was born: it is not idle (the safety net waits). */
  noteClaim(gpuId: string): void {
    this.#lastClaim.set(gpuId, this.#d.relay())
  }

  /** Stop the bridge following an attempt (cancelled, timed out, or no longer ours). */
  cancelOnGpu(o: {
    readonly gpuId: string
    readonly taskId: string
    readonly attempt: number
    readonly reason: string
  }): void {
    const { gpuId, taskId, attempt, reason } = o
    this.control(gpuId, { v: PROTOCOL_VERSION, kind: 'cancel', taskId, attempt, reason })
  }

  /** A claim was granted: nothing about this attempt needs sending any more. */
  forget(taskId: string, attempt: number): void {
    this.#offeredAt.delete(`${taskId}:${attempt}`)
    const tail = `:${taskId}:${attempt}`
    for (const key of this.#skippedByBirth.keys()) {
      if (key.endsWith(tail)) this.#skippedByBirth.delete(key)
    }
  }

  /** Send for a birth, unless a birth did so for this GPU and attempt a moment ago. */
  sendForBirth(gpuId: string, task: TaskRow): boolean {
    const key = `${gpuId}:${task.id}:${task.attempt}`
    if (this.#send({ gpuId, task, why: 'reconcile', minIntervalMs: BIRTH_MIN_INTERVAL_MS })) {
      this.#skippedByBirth.delete(key)
      return true
    }
    if (this.#skippedByBirth.size < 100_000) {
      this.#skippedByBirth.set(key, { gpuId, taskId: task.id, attempt: task.attempt })
    }
    return false
  }

  /** A claim came out of order: make sure the GPU has the older tasks it must take first. */
  sendOlder(gpuId: string, older: readonly TaskRow[]): void {
    for (const row of older.slice(0, NOT_NEXT_MAX_SENT)) {
      this.#send({
        gpuId,
        task: row,
        why: 'claim out of order',
        minIntervalMs: NOT_NEXT_MIN_INTERVAL_MS,
      })
    }
  }

  /** Every second: sends births skipped, and the safety net for idle GPUs. */
  tick(): void {
    const { registry, store } = this.#d
    const now = this.#d.relay()
    // Entries past every interval decide nothing any more (a missing one reads as "long ago").
    const longest = Math.max(BIRTH_MIN_INTERVAL_MS, SAFETY_MIN_INTERVAL_MS)
    for (const [key, at] of this.#sent) {
      if (now - at >= longest || now < at) this.#sent.delete(key)
    }
    for (const [key, at] of this.#offeredAt) {
      if (now - at >= SAFETY_OFFER_AGE_MS || now < at) this.#offeredAt.delete(key)
    }
    for (const [key, skipped] of this.#skippedByBirth) {
      if (now - (this.#sent.get(key) ?? 0) < BIRTH_MIN_INTERVAL_MS) continue
      this.#skippedByBirth.delete(key)
      const row = store.get(skipped.taskId)
      if (row?.state === 'queued' && row.attempt === skipped.attempt) {
        if (registry.get(skipped.gpuId)?.online === true) this.sendForBirth(skipped.gpuId, row)
      }
    }
    for (const gpu of registry.ready()) {
      const free = gpu.capacity - store.processingCount(gpu.id)
      if (free <= 0) continue
      if (now - (this.#lastClaim.get(gpu.id) ?? -Infinity) < SAFETY_QUIET_MS) continue
      let sent = 0
      for (const row of store.queuedOfTypes(gpu.types, free)) {
        if (this.#offeredAt.has(`${row.id}:${row.attempt}`)) continue // offered a moment ago
        if (
          this.#send({
            gpuId: gpu.id,
            task: row,
            why: 'idle GPU',
            minIntervalMs: SAFETY_MIN_INTERVAL_MS,
          })
        )
          sent++
      }
      if (sent > 0) this.#d.log.info({ gpuId: gpu.id, sent }, 'queued work sent to an idle GPU')
    }
  }

  /** Retryable failure: a new attempt offered to all while attempts remain, else a final error. */
  retryOrFail(task: TaskRow, reason: string, note: string): void {
    const { lifecycle, log, maxAttempts } = this.#d
    if (task.attempt >= maxAttempts) {
      this.fail(task, `${reason}（已重试 ${task.attempt} 次）`, note)
      return
    }
    const moved = lifecycle.requeue({ id: task.id, attempt: task.attempt, reason })
    if (!moved?.after) return
    log.info({ taskId: task.id, attempt: moved.after.attempt, reason: note }, 'task re-queued')
    this.offer(moved.after, 'retry')
  }

  fail(task: TaskRow, message: string, note: string): void {
    const { lifecycle, log } = this.#d
    if (lifecycle.fail({ id: task.id, attempt: task.attempt, message, note })) {
      log.warn({ taskId: task.id, attempt: task.attempt, message }, 'task error')
    }
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
    publish(client, {
      topic: topics.gpuControl(gpuId),
      payload: encodePayload(message),
      qos: 1,
    }).catch((err: unknown) => {
      log.warn({ gpuId, kind: message.kind, err: errorMessage(err) }, 'control not published')
    })
  }

  /** The task on one GPU's own topic, unless sent there within `minIntervalMs`. */
  #send(o: {
    readonly gpuId: string
    readonly task: TaskRow
    readonly why: string
    readonly minIntervalMs: number
  }): boolean {
    const { gpuId, task, why, minIntervalMs } = o
    const { client, topics, log } = this.#d
    const type = TaskType.safeParse(task.type)
    if (task.state !== 'queued' || !type.success) return false
    const key = `${gpuId}:${task.id}:${task.attempt}`
    const now = this.#d.relay()
    const last = this.#sent.get(key)
    if (last !== undefined && now - last < minIntervalMs) return false
    this.#sent.set(key, now)
    publish(client, {
      topic: topics.gpuTasks(gpuId),
      payload: encodePayload(taskMessage(task, type.data)),
      qos: 1,
    })
      .then(() => {
        log.debug({ taskId: task.id, gpuId, attempt: task.attempt, why }, 'task sent to a GPU')
      })
      .catch((err: unknown) => {
        log.warn({ taskId: task.id, gpuId, err: errorMessage(err) }, 'task send failed')
      })
    return true
  }
}

function taskMessage(task: TaskRow, type: TaskType): TaskMessage {
  return {
    v: PROTOCOL_VERSION,
    taskId: task.id,
    attempt: task.attempt,
    order: task.seq,
    type,
    input: {
      audio: { hash: task.audio_hash, ext: task.audio_ext, size: task.audio_size },
      video: { hash: task.video_hash, ext: task.video_ext, size: task.video_size },
    },
    options: parseOptions(task.options),
    expiresAt: new Date(task.expires_at).toISOString(),
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
