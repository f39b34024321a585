/**
 * Moves tasks between SQLite and MQTT (DESIGN §3): write then publish; grant or refuse claims by
 * compare-and-set; apply bridge events once per (taskId, attempt, seq); reconcile on every birth.
 * MQTT handlers never throw: bad payloads are logged and dropped.
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { AdminTopics } from './admin-topics.js'
import type { FilePool } from './file-pool.js'
import type { GpuRegistry } from './gpu-registry.js'
import type { TaskRow, TaskStore } from './task-store.js'
import { errorMessage } from '../lib/errors.js'
import { publish } from '../lib/mqtt.js'
import {
  BridgeEvent,
  PROTOCOL_VERSION,
  encodePayload,
  parsePayload,
  type ClaimRefusal,
  type GpuControl,
  type Holding,
  type TaskMessage,
  type Topics,
} from '../protocol/index.js'

export interface DispatcherDeps {
  readonly store: TaskStore
  readonly pool: FilePool
  readonly registry: GpuRegistry
  readonly client: MqttClient
  readonly topics: Topics
  readonly admin: AdminTopics
  readonly log: Logger
  readonly now: () => number
  readonly maxAttempts: number
}

type EventOf<K extends BridgeEvent['kind']> = Extract<BridgeEvent, { kind: K }>

const MILESTONES = [25, 50, 75] as const
/** Don't re-publish the same task attempt more often than this when a claim says it is missing. */
const REPUBLISH_MIN_INTERVAL_MS = 2_000

export class Dispatcher {
  readonly #d: DispatcherDeps
  readonly #lastRepublish = new Map<string, number>()

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
      type: 'heygem',
      input: {
        audio: { hash: task.audio_hash, ext: task.audio_ext, size: task.audio_size },
        video: { hash: task.video_hash, ext: task.video_ext, size: task.video_size },
      },
      options: parseOptions(task.options),
      expiresAt: new Date(task.expires_at).toISOString(),
    }
    const gpuId = task.gpu_id
    this.#lastRepublish.set(`${task.id}:${task.attempt}`, this.#d.now())
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

  /** `relay/gpus/{gpuId}/events` */
  onEventMessage(gpuId: string, payload: Buffer): void {
    const parsed = parsePayload(BridgeEvent, payload)
    if (!parsed.ok) {
      this.#d.log.warn(
        { gpuId, error: parsed.error, bytes: payload.length },
        'bad bridge event dropped',
      )
      return
    }
    const event = parsed.value
    try {
      switch (event.kind) {
        case 'claim':
          this.#onClaim(gpuId, event)
          break
        case 'progress':
          this.#onProgress(gpuId, event)
          break
        case 'done':
          this.#onDone(gpuId, event)
          break
        case 'error':
          this.#onError(gpuId, event)
          break
      }
    } catch (err) {
      this.#d.log.error(
        { err, gpuId, taskId: event.taskId, kind: event.kind },
        'bridge event failed',
      )
    }
  }

  /** Reconcile on birth (DESIGN §3.3). */
  onGpuOnline(gpuId: string, holding: readonly Holding[], epoch: number): void {
    const { store, registry, log, now } = this.#d
    const held = new Map(holding.map((h) => [h.taskId, h]))
    const offline = registry
      .all()
      .filter((g) => !g.online && g.id !== gpuId)
      .map((g) => g.id)
    const moved = store.reassignQueued(offline, gpuId, now())
    let republished = 0
    for (const task of store.queuedFor(gpuId)) {
      if (held.get(task.id)?.attempt === task.attempt) continue
      this.publishTask(task, 'reconcile')
      republished++
    }
    let requeued = 0
    for (const task of store.processingOn(gpuId)) {
      if (held.get(task.id)?.attempt === task.attempt) continue
      // Claimed by this very connection and not held: it finished and was acknowledged while
      // the birth was in flight, or will be reported; only an earlier connection's claim is lost.
      if ((task.claim_epoch ?? -1) >= epoch) continue
      this.#retryOrFail(task, 'GPU 重新上线后不再持有该任务（可能已重启）', 'lost-on-gpu')
      requeued++
    }
    for (const item of holding) {
      const task = store.get(item.taskId)
      const current =
        task?.attempt === item.attempt &&
        task.gpu_id === gpuId &&
        (task.state === 'queued' || task.state === 'processing')
      if (!current && item.phase !== 'finished') {
        this.#control(gpuId, {
          v: PROTOCOL_VERSION,
          kind: 'cancel',
          taskId: item.taskId,
          attempt: item.attempt,
          reason: task ? `task is ${task.state}, attempt ${task.attempt}` : 'unknown task',
        })
      }
    }
    log.info({ gpuId, held: holding.length, republished, requeued, moved }, 'backlog flushed')
    this.#d.admin.queueChanged()
  }

  /** Ask a GPU seen online without a birth to publish one (so its holding can be reconciled). */
  requestRebirth(gpuId: string): void {
    this.#control(gpuId, { v: PROTOCOL_VERSION, kind: 'rebirth' })
    this.#d.admin.queueChanged()
  }

  onGpuOffline(_gpuId: string): void {
    this.#d.admin.queueChanged()
  }

  /** Queued tasks past their TTL become `expired`. */
  expireDue(): void {
    const { store, log, now } = this.#d
    for (const id of store.dueToExpire(now())) {
      if (store.expire(id, now())) {
        log.info({ taskId: id }, 'task expired')
        this.#snapshot(id)
      }
    }
  }

  #onClaim(gpuId: string, event: EventOf<'claim'>): void {
    const { store, log, now } = this.#d
    const task = store.get(event.taskId)
    const refuse = (reason: ClaimRefusal): void => {
      log.info({ taskId: event.taskId, gpuId, attempt: event.attempt, reason }, 'claim refused')
      this.#control(gpuId, {
        v: PROTOCOL_VERSION,
        kind: 'claim-refused',
        taskId: event.taskId,
        attempt: event.attempt,
        reason,
      })
    }
    if (!task) return refuse('unknown-task')
    if (task.attempt !== event.attempt) return refuse('stale-attempt')
    if (task.gpu_id !== gpuId) return refuse('reassigned')
    if (task.state === 'processing') {
      // The same GPU asking again for the same attempt: it never saw our grant. Grant again.
      store.reclaimed(task.id, task.attempt, event.epoch)
      this.#grant(gpuId, task)
      return
    }
    if (task.state !== 'queued') return refuse('not-queued')
    if (task.expires_at <= now()) {
      if (store.expire(task.id, now())) this.#snapshot(task.id)
      return refuse('expired')
    }
    const older = store.olderQueued(gpuId, task.seq, now())
    if (older.length > 0) {
      // Run in submit order: the bridge must take the older ones first. Make sure it has them.
      for (const row of older) this.#republishIfQuiet(row)
      return refuse('not-next')
    }
    if (!store.claim(task.id, gpuId, task.attempt, event.seq, event.epoch, now())) {
      return refuse('not-queued')
    }
    this.#lastRepublish.delete(`${task.id}:${task.attempt}`)
    log.info({ taskId: task.id, gpuId, attempt: task.attempt }, 'task claimed')
    this.#grant(gpuId, task)
    this.#snapshot(task.id)
  }

  #grant(gpuId: string, task: TaskRow): void {
    this.#control(gpuId, {
      v: PROTOCOL_VERSION,
      kind: 'claim-granted',
      taskId: task.id,
      attempt: task.attempt,
    })
  }

  #onProgress(gpuId: string, event: EventOf<'progress'>): void {
    const { store, log, now } = this.#d
    const before = store.get(event.taskId)
    const applied = store.progress(
      event.taskId,
      gpuId,
      event.attempt,
      event.seq,
      event.progress,
      event.stage,
      event.message ?? null,
      now(),
    )
    if (!applied || !before) return
    for (const mark of MILESTONES) {
      if (before.progress < mark && event.progress >= mark) {
        log.info(
          { taskId: event.taskId, gpuId, progress: event.progress, stage: event.stage },
          'task progress',
        )
      }
    }
    this.#snapshot(event.taskId)
  }

  #onDone(gpuId: string, event: EventOf<'done'>): void {
    const { store, pool, log, now } = this.#d
    const task = store.get(event.taskId)
    if (task?.state === 'processing' && task.attempt === event.attempt && task.gpu_id === gpuId) {
      const stored = pool.get(event.result.hash)
      if (stored?.size !== event.result.size) {
        log.warn({ taskId: task.id, gpuId, result: event.result }, 'done without its result file')
        this.#retryOrFail(task, '结果文件未能传回网关', 'result-missing')
      } else if (store.finishDone(task.id, gpuId, task.attempt, event.seq, event.result, now())) {
        log.info(
          {
            taskId: task.id,
            gpuId,
            attempt: task.attempt,
            elapsedMs: event.elapsedMs,
            bytes: event.result.size,
          },
          'task done',
        )
        this.#snapshot(task.id)
      }
    } else {
      log.debug(
        { taskId: event.taskId, gpuId, attempt: event.attempt },
        'done event for a non-current attempt',
      )
    }
    this.#ack(gpuId, event)
  }

  #onError(gpuId: string, event: EventOf<'error'>): void {
    const { store, log } = this.#d
    const task = store.get(event.taskId)
    if (task?.state === 'processing' && task.attempt === event.attempt && task.gpu_id === gpuId) {
      log.warn(
        {
          taskId: task.id,
          gpuId,
          attempt: task.attempt,
          retryable: event.retryable,
          message: event.message,
        },
        'task failed on GPU',
      )
      if (event.retryable) this.#retryOrFail(task, event.message, 'gpu-error')
      else this.#fail(task, event.message, 'gpu-error')
    }
    this.#ack(gpuId, event)
  }

  /** Retryable failure: a new attempt while attempts remain, else a final error. */
  #retryOrFail(task: TaskRow, reason: string, note: string): void {
    const { store, registry, log, now, maxAttempts } = this.#d
    if (task.attempt >= maxAttempts) {
      this.#fail(task, `${reason}（已重试 ${task.attempt} 次）`, note)
      return
    }
    const gpuId = registry.pick((id) => store.loadOf(id))
    if (!store.requeue(task.id, task.attempt, gpuId, reason, now())) return
    log.info({ taskId: task.id, attempt: task.attempt + 1, gpuId, reason: note }, 'task re-queued')
    const row = store.get(task.id)
    if (row) this.publishTask(row, 'retry')
    this.#snapshot(task.id)
  }

  #fail(task: TaskRow, message: string, note: string): void {
    const { store, log, now } = this.#d
    if (store.finishError(task.id, task.attempt, message, now(), note)) {
      log.warn({ taskId: task.id, attempt: task.attempt, message }, 'task error')
      this.#snapshot(task.id)
    }
  }

  #republishIfQuiet(task: TaskRow): void {
    const key = `${task.id}:${task.attempt}`
    const last = this.#lastRepublish.get(key) ?? 0
    if (this.#d.now() - last < REPUBLISH_MIN_INTERVAL_MS) return
    this.publishTask(task, 'claim out of order')
  }

  #ack(gpuId: string, event: EventOf<'done'> | EventOf<'error'>): void {
    this.#control(gpuId, {
      v: PROTOCOL_VERSION,
      kind: 'ack',
      taskId: event.taskId,
      attempt: event.attempt,
      seq: event.seq,
    })
  }

  #control(gpuId: string, message: GpuControl): void {
    const { client, topics, log } = this.#d
    publish(client, topics.gpuControl(gpuId), encodePayload(message), { qos: 1 }).catch(
      (err: unknown) => {
        log.warn({ gpuId, kind: message.kind, err: errorMessage(err) }, 'control not published')
      },
    )
  }

  #snapshot(taskId: string): void {
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
