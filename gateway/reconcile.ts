/**
 * Reconcile on every birth (docs/design.md §3.3): what a bridge holds, as listed by a live birth, against
 * what SQLite says is assigned to it. Lost broker state, lost sessions and messages published
 * before the first subscription are all repaired here.
 */
import type { Logger } from 'pino'
import type { Dispatcher } from './dispatcher.js'
import type { GpuRegistry } from './gpu-registry.js'
import type { TaskStore } from './task-store.js'
import type { Holding } from '../protocol/index.js'

export interface ReconcileDeps {
  readonly store: TaskStore
  readonly registry: GpuRegistry
  readonly dispatcher: Dispatcher
  readonly log: Logger
  readonly now: () => number
}

export function reconcileBirth(
  deps: ReconcileDeps,
  gpuId: string,
  holding: readonly Holding[],
  epoch: number,
): void {
  const { store, registry, dispatcher, log, now } = deps
  const held = new Map(holding.map((h) => [h.taskId, h]))
  const offline = registry
    .all()
    .filter((g) => !g.online && g.id !== gpuId)
    .map((g) => g.id)
  const moved = store.reassignQueued(offline, gpuId, now())
  let republished = 0
  for (const task of store.queuedFor(gpuId)) {
    if (held.get(task.id)?.attempt === task.attempt) continue
    if (dispatcher.republishForBirth(task)) republished++
  }
  let requeued = 0
  for (const task of store.processingOn(gpuId)) {
    if (held.get(task.id)?.attempt === task.attempt) continue
    // Claimed by this very connection and not held: it finished and was acknowledged while
    // the birth was in flight, or will be reported; any other connection's claim is lost. (A
    // claim of a higher epoch than this birth is an earlier install's whose epochs ran ahead:
    // the registry reset them, see gpu-registry.ts.)
    if (task.claim_epoch === epoch) continue
    dispatcher.retryOrFail(task, 'GPU 重新上线后不再持有该任务（可能已重启）', 'lost-on-gpu')
    requeued++
  }
  for (const item of holding) {
    const task = store.get(item.taskId)
    const current =
      task?.attempt === item.attempt &&
      task.gpu_id === gpuId &&
      (task.state === 'queued' || task.state === 'processing')
    if (!current && item.phase !== 'finished') {
      const reason = task ? `task is ${task.state}, attempt ${task.attempt}` : 'unknown task'
      dispatcher.cancelOnGpu(gpuId, item.taskId, item.attempt, reason)
    }
  }
  log.info({ gpuId, held: holding.length, republished, requeued, moved }, 'backlog flushed')
  dispatcher.queueChanged()
}

/**
 * A GPU went offline (will, shutdown or missed heartbeats): its queued, unclaimed work moves to
 * the least-loaded GPU still online (docs/design.md §10). The claim keeps this safe: a late message for
 * the old GPU is refused as `not-eligible`. With no GPU online the work stays where it is.
 */
export function moveQueuedFrom(deps: ReconcileDeps, gpuId: string): number {
  const { store, registry, dispatcher, log, now } = deps
  if (registry.online().length === 0) return 0
  const target = registry.pick((id) => store.loadOf(id))
  if (target === gpuId) return 0
  const moved = store.reassignQueued([gpuId], target, now())
  if (moved > 0) {
    for (const task of store.queuedFor(target)) {
      if (task.published_attempt < task.attempt)
        dispatcher.publishTask(task, 'moved from offline GPU')
    }
    log.info({ from: gpuId, to: target, moved }, 'queued work moved to an online GPU')
  }
  return moved
}
