/**
 * What the HTTP routes read: a task as its owner sees it (position, estimate, the words to show),
 * the queue, the GPUs. Computed from SQLite; nothing here changes a row (see task-actions.ts).
 */
import {
  bootRemainingS,
  etaSeconds,
  waitingText,
  type WaitReason,
  type WaitingTexts,
} from './estimates.js'
import type { GpuRegistry } from './gpu-registry.js'
import type { TaskRow, TaskStore } from './task-store.js'
import { appError } from '../lib/errors.js'
import { runServerStatus, stageText } from './run-server-status.js'
import type { RunServerStatus } from '../protocol/index.js'

export interface TaskServiceDeps {
  readonly store: TaskStore
  readonly registry: GpuRegistry
  readonly bootEstimateS: number
  readonly runEstimateS: number
  readonly waitingTexts: WaitingTexts
  /** Wall-clock ms (estimates only: no clock here decides anything). */
  readonly now: () => number
}

export interface TaskView {
  readonly row: TaskRow
  readonly position: number
  readonly etaSeconds: number
  readonly gpusOnline: number
  /** GPUs online whose service can take work. */
  readonly gpusReady: number
  /** Why a queued task waits; null once it left the queue. */
  readonly waiting: WaitReason | null
  /** What to tell the user now, in Chinese. */
  readonly message: string
}

export interface QueueView {
  readonly queued: number
  readonly processing: number
  readonly gpusOnline: number
  readonly gpusReady: number
  /** Tasks the ready GPUs run at once (sum of their capacities). */
  readonly capacity: number
  readonly etaSeconds: number
}

export class TaskService {
  readonly #d: TaskServiceDeps

  constructor(deps: TaskServiceDeps) {
    this.#d = deps
  }

  get(taskId: string): TaskRow {
    const row = this.#d.store.get(taskId)
    if (!row) throw appError('TASK_NOT_FOUND')
    return row
  }

  find(taskId: string): TaskRow | undefined {
    return this.#d.store.get(taskId)
  }

  view(row: TaskRow): TaskView {
    const { store } = this.#d
    const gpus = this.#gpuCounts()
    const position = store.queuePosition(row)
    const waiting = row.state === 'queued' ? gpus.reason : null
    const eta =
      row.state === 'queued'
        ? etaSeconds({
            position,
            processing: store.counts().processing,
            gpusOnline: gpus.ready,
            onlineCapacity: gpus.capacity,
            bootS: this.#bootS(row.created_at),
            runS: this.#runS(),
          })
        : 0
    const message =
      waiting === null
        ? describe(row)
        : waitingText(this.#d.waitingTexts, waiting, { position, eta })
    return {
      row,
      position,
      etaSeconds: eta,
      gpusOnline: gpus.online,
      gpusReady: gpus.ready,
      waiting,
      message,
    }
  }

  queue(): QueueView {
    const counts = this.#d.store.counts()
    const gpus = this.#gpuCounts()
    const eta = etaSeconds({
      position: counts.queued + 1,
      processing: counts.processing,
      gpusOnline: gpus.ready,
      onlineCapacity: gpus.capacity,
      bootS: this.#bootS(this.#d.now()),
      runS: this.#runS(),
    })
    return {
      queued: counts.queued,
      processing: counts.processing,
      gpusOnline: gpus.online,
      gpusReady: gpus.ready,
      capacity: gpus.capacity,
      etaSeconds: eta,
    }
  }

  history(owner: string | null, limit: number, offset: number): TaskRow[] {
    return this.#d.store.history(owner, limit, offset)
  }

  /** Presence of every known GPU, for health and admins. */
  gpus(): {
    id: string
    online: boolean
    ready: boolean
    service: string | null
    epoch: number
    since: string | null
  }[] {
    return this.#d.registry.all().map((g) => ({
      id: g.id,
      online: g.online,
      ready: g.online && g.ready,
      service: g.online ? g.service : null,
      epoch: g.epoch,
      since: g.since > 0 ? new Date(g.since).toISOString() : null,
    }))
  }

  /** The run_server status word for a task (run-server-status.ts). */
  serviceStatus(row: TaskRow): RunServerStatus {
    return runServerStatus(row)
  }

  #gpuCounts(): { online: number; ready: number; capacity: number; reason: WaitReason } {
    const { registry } = this.#d
    const online = registry.online().length
    const ready = registry.ready()
    const reason: WaitReason = ready.length > 0 ? 'queued' : online > 0 ? 'starting' : 'offline'
    return {
      online,
      ready: ready.length,
      capacity: ready.reduce((sum, g) => sum + g.capacity, 0),
      reason,
    }
  }

  /**
   * The boot estimate for a wait that began at the later of `since` and the moment the last GPU
   * went offline: it counts down as the wait goes on (to a floor, once overdue). A GPU coming
   * online whose service still loads does not restart it: that is the same boot going on. Words
   * only, on the wall clock like the presence times it compares with: a step shows the full
   * estimate (back) or the floor (forward), and decides nothing.
   */
  #bootS(since: number): number {
    const offline = this.#d.registry.all().filter((g) => !g.online)
    const wentOffline = Math.max(0, ...offline.map((g) => g.since))
    const elapsedS = (this.#d.now() - Math.max(since, wentOffline)) / 1000
    return bootRemainingS(this.#d.bootEstimateS, elapsedS)
  }

  #runS(): number {
    const ms = this.#d.store.recentRunMs()
    return ms === null ? this.#d.runEstimateS : Math.max(1, Math.round(ms / 1000))
  }
}

/** Where a done task's result is downloaded (the compatible download path). */
export function resultUrl(row: TaskRow): string | null {
  return row.state === 'done' ? `/api/heygem/download?task_id=${row.id}` : null
}

/** Why a task ended without a result (null while it may still succeed). */
export function failureText(view: TaskView): string | null {
  const { state, error_msg: errorMsg } = view.row
  if (state === 'error') return errorMsg ?? view.message
  if (state === 'cancelled' || state === 'expired') return view.message
  return null
}

/** The words for a task that is no longer waiting. */
function describe(row: TaskRow): string {
  switch (row.state) {
    case 'queued':
      return '任务排队中'
    case 'processing':
      return row.stage_message ?? stageText(row.stage, row.progress)
    case 'done':
      return '✅ 视频生成完成'
    case 'error':
      return `❌ 任务失败：${row.error_msg ?? '未知错误'}`
    case 'cancelled':
      return '任务已取消'
    case 'expired':
      return '任务排队超时，已过期，请重新提交'
  }
}
