/**
 * Reconcile on every birth (docs/design.md §3.3): what a bridge holds, as listed by a live birth,
 * against SQLite. Its processing tasks it no longer holds are retried; what it holds that is no
 * longer its to run (done, cancelled, another attempt, running elsewhere) it is told to drop; and
 * a bridge whose broker session is not `resumed` is sent the queued tasks of its types it lacks
 * (a resumed session still holds the offers the broker queued while it was away). A GPU going
 * offline moves nothing: there is no per-GPU queue, whoever claims first runs the task.
 */
import type { Logger } from 'pino'
import type { Dispatcher } from './dispatcher.js'
import type { Birth } from './gpu-registry.js'
import type { TaskRow, TaskStore } from './task-store.js'

export interface ReconcileDeps {
  readonly store: TaskStore
  readonly dispatcher: Dispatcher
  readonly log: Logger
}

/** The most queued tasks one birth is sent (the oldest; the safety net and claims do the rest). */
const BIRTH_MAX_SENT = 10_000

export function reconcileBirth(deps: ReconcileDeps, birth: Birth): void {
  const { store, dispatcher, log } = deps
  const { gpuId, holding, epoch } = birth
  dispatcher.noteClaim(gpuId)
  const held = new Map(holding.map((h) => [h.taskId, h]))
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
    if (item.phase !== 'finished' && !(task && isCurrentFor(task, item.attempt, birth))) {
      const reason = task ? `task is ${task.state}, attempt ${task.attempt}` : 'unknown task'
      dispatcher.cancelOnGpu({ gpuId, taskId: item.taskId, attempt: item.attempt, reason })
    }
  }
  let sent = 0
  if (birth.session !== 'resumed') {
    for (const task of store.queuedOfTypes(birth.types, BIRTH_MAX_SENT)) {
      if (held.get(task.id)?.attempt === task.attempt) continue
      if (dispatcher.sendForBirth(gpuId, task)) sent++
    }
  }
  log.info(
    { gpuId, held: holding.length, sent, requeued, session: birth.session ?? null },
    'backlog flushed',
  )
}

/** May the bridge keep following this attempt: queued of a type it runs, or running on it? */
function isCurrentFor(task: TaskRow, attempt: number, birth: Birth): boolean {
  if (task.attempt !== attempt) return false
  if (task.state === 'queued') return birth.types.some((t) => t === task.type)
  return task.state === 'processing' && task.gpu_id === birth.gpuId
}
