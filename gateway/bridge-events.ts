/**
 * Bridge events on `relay/gpus/{gpuId}/events` (docs/design.md §3.2, §3.6): claims granted or
 * refused by compare-and-set, progress, done and error applied once per (taskId, attempt, seq).
 * The claim is the scheduler: a GPU that is online and ready, runs the task's type and has a free
 * slot gets the oldest queued task of its types, and nothing else. MQTT handlers never throw: a
 * bad payload is logged and dropped.
 */
import type { Logger } from 'pino'
import type { Dispatcher } from './dispatcher.js'
import type { FilePool } from './file-pool.js'
import type { GpuRegistry } from './gpu-registry.js'
import type { TaskLifecycle } from './task-lifecycle.js'
import { storedResultOf, type TaskRow, type TaskStore } from './task-store.js'
import {
  BridgeEvent,
  PROTOCOL_VERSION,
  parsePayload,
  type ClaimRefusal,
} from '../protocol/index.js'

export interface BridgeEventsDeps {
  readonly store: TaskStore
  readonly lifecycle: TaskLifecycle
  readonly registry: GpuRegistry
  readonly pool: FilePool
  readonly dispatcher: Dispatcher
  readonly log: Logger
  /** False for a GPU being switched off (power on demand): it is granted nothing new. */
  readonly takesWork?: (gpuId: string) => boolean
}

type EventOf<K extends BridgeEvent['kind']> = Extract<BridgeEvent, { kind: K }>

const MILESTONES = [25, 50, 75] as const

export class BridgeEvents {
  readonly #d: BridgeEventsDeps
  readonly #out: Dispatcher

  constructor(deps: BridgeEventsDeps) {
    this.#d = deps
    this.#out = deps.dispatcher
  }

  /** `relay/gpus/{gpuId}/events`: never throws. */
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

  #onClaim(gpuId: string, event: EventOf<'claim'>): void {
    const { store, lifecycle, registry, log } = this.#d
    this.#out.noteClaim(gpuId)
    const task = store.get(event.taskId)
    const refuse = (reason: ClaimRefusal): void => {
      log.info({ taskId: event.taskId, gpuId, attempt: event.attempt, reason }, 'claim refused')
      this.#out.control(gpuId, {
        v: PROTOCOL_VERSION,
        kind: 'claim-refused',
        taskId: event.taskId,
        attempt: event.attempt,
        reason,
      })
    }
    if (!task) return refuse('unknown-task')
    if (task.attempt !== event.attempt) return refuse('stale-attempt')
    if (task.state === 'processing') {
      if (task.gpu_id !== gpuId) return refuse('not-queued') // another GPU took it
      // The same GPU asking again for the same attempt: it never saw our grant. Grant again.
      lifecycle.reclaimed({ id: task.id, attempt: task.attempt, epoch: event.epoch })
      this.#grant(gpuId, task)
      return
    }
    if (task.state !== 'queued') return refuse('not-queued')
    if (store.isExpired(task)) {
      lifecycle.expire(task.id)
      return refuse('expired')
    }
    const gpu = registry.get(gpuId)
    const types = registry.typesOf(gpuId)
    if (gpu?.online !== true || !gpu.ready) {
      // Not seen online and ready (yet): its claim overtook its birth (MQTT orders messages per
      // topic only), or its service just went away. Claim again later; a birth settles it.
      if (gpu?.online !== true) this.#out.requestRebirth(gpuId)
      return refuse('not-ready')
    }
    // Being switched off: a task started now would die with the machine. Claim again later (it
    // is back, or the stop did not take: gateway/power/gpu-power.ts).
    if (this.#d.takesWork?.(gpuId) === false) return refuse('not-ready')
    if (!types.some((t) => t === task.type)) return refuse('not-eligible')
    if (store.processingCount(gpuId) >= gpu.capacity) return refuse('at-capacity')
    const older = store.queuedOfTypes(types, 1_000, task.seq)
    if (older.length > 0) {
      // Run in submit order: the bridge must take the older ones first. Make sure it has them.
      this.#out.sendOlder(gpuId, older)
      return refuse('not-next')
    }
    const claimed = lifecycle.claim({
      id: task.id,
      gpuId,
      attempt: task.attempt,
      seq: event.seq,
      epoch: event.epoch,
    })
    if (!claimed) return refuse('not-queued')
    this.#out.forget(task.id, task.attempt)
    log.info({ taskId: task.id, gpuId, attempt: task.attempt }, 'task claimed')
    this.#grant(gpuId, task)
  }

  #grant(gpuId: string, task: TaskRow): void {
    this.#out.control(gpuId, {
      v: PROTOCOL_VERSION,
      kind: 'claim-granted',
      taskId: task.id,
      attempt: task.attempt,
    })
  }

  #onProgress(gpuId: string, event: EventOf<'progress'>): void {
    const { store, lifecycle, log } = this.#d
    const before = store.get(event.taskId)
    const applied = lifecycle.progress({
      id: event.taskId,
      gpuId,
      attempt: event.attempt,
      seq: event.seq,
      progress: event.progress,
      stage: event.stage,
      message: event.message ?? null,
      currentFrame: event.currentFrame ?? null,
      totalFrames: event.totalFrames ?? null,
    })
    if (!applied || !before) return
    for (const mark of MILESTONES) {
      if (before.progress < mark && event.progress >= mark) {
        log.info(
          { taskId: event.taskId, gpuId, progress: event.progress, stage: event.stage },
          'task progress',
        )
      }
    }
  }

  /**
   * A done names the result this GPU handed over for this attempt (docs/design.md §6), and nothing
   * else: another pool file (the task's own input, say) is refused and logged, and the attempt
   * ends as if its result never arrived.
   */
  #onDone(gpuId: string, event: EventOf<'done'>): void {
    const { store, lifecycle, pool, log } = this.#d
    const task = store.get(event.taskId)
    if (task?.state === 'processing' && task.attempt === event.attempt && task.gpu_id === gpuId) {
      const handed = storedResultOf(task)
      const inPool = pool.get(event.result.hash)
      if (handed?.hash !== event.result.hash || handed.size !== event.result.size) {
        log.warn(
          {
            taskId: task.id,
            gpuId,
            attempt: task.attempt,
            named: event.result.hash,
            stored: handed?.hash ?? null,
          },
          'done refused: it names no result this GPU stored for the attempt',
        )
        this.#out.retryOrFail(task, '结果文件未能传回网关', 'result-missing')
      } else if (inPool?.size !== event.result.size) {
        log.warn({ taskId: task.id, gpuId, result: event.result }, 'done without its result file')
        this.#out.retryOrFail(task, '结果文件未能传回网关', 'result-missing')
      } else if (
        lifecycle.finish({
          id: task.id,
          gpuId,
          attempt: task.attempt,
          seq: event.seq,
          result: event.result,
        })
      ) {
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
      }
    } else {
      log.debug(
        { taskId: event.taskId, gpuId, attempt: event.attempt },
        'done event for a non-current attempt',
      )
    }
    this.#out.ack(gpuId, event)
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
      if (event.retryable) this.#out.retryOrFail(task, event.message, 'gpu-error')
      else this.#out.fail(task, event.message, 'gpu-error')
    }
    this.#out.ack(gpuId, event)
  }
}
