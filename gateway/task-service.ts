/**
 * What the HTTP routes read: a task as its owner sees it (position, estimate, the words to show),
 * the queue, the GPUs. Computed from SQLite; nothing here changes a row (see task-actions.ts).
 */
import { etaSeconds, queuedMessage } from './estimates.js'
import type { GpuRegistry } from './gpu-registry.js'
import type { TaskRow, TaskStore } from './task-store.js'
import { AppError } from '../lib/errors.js'
import type { ServiceStatus } from '../protocol/index.js'

export interface TaskServiceDeps {
  readonly store: TaskStore
  readonly registry: GpuRegistry
  readonly bootEstimateS: number
  readonly runEstimateS: number
}

export interface TaskView {
  readonly row: TaskRow
  readonly position: number
  readonly etaSeconds: number
  readonly gpusOnline: number
  /** What to tell the user now, in Chinese. */
  readonly message: string
}

export interface QueueView {
  readonly queued: number
  readonly processing: number
  readonly gpusOnline: number
  readonly etaSeconds: number
}

export class TaskService {
  readonly #d: TaskServiceDeps

  constructor(deps: TaskServiceDeps) {
    this.#d = deps
  }

  get(taskId: string): TaskRow {
    const row = this.#d.store.get(taskId)
    if (!row) throw new AppError('TASK_NOT_FOUND', 404, '任务不存在，请检查任务编号')
    return row
  }

  view(row: TaskRow): TaskView {
    const { store, registry } = this.#d
    const online = registry.online()
    const position = store.queuePosition(row)
    const counts = store.counts()
    const eta =
      row.state === 'queued'
        ? etaSeconds({
            position,
            processing: counts.processing,
            gpusOnline: online.length,
            onlineCapacity: online.reduce((sum, g) => sum + g.capacity, 0),
            bootS: this.#d.bootEstimateS,
            runS: this.#runS(),
          })
        : 0
    return {
      row,
      position,
      etaSeconds: eta,
      gpusOnline: online.length,
      message: describe(row, position, eta, online.length),
    }
  }

  queue(): QueueView {
    const { store, registry } = this.#d
    const counts = store.counts()
    const online = registry.online()
    const eta = etaSeconds({
      position: counts.queued + 1,
      processing: counts.processing,
      gpusOnline: online.length,
      onlineCapacity: online.reduce((sum, g) => sum + g.capacity, 0),
      bootS: this.#d.bootEstimateS,
      runS: this.#runS(),
    })
    return {
      queued: counts.queued,
      processing: counts.processing,
      gpusOnline: online.length,
      etaSeconds: eta,
    }
  }

  history(owner: string | null, limit: number, offset: number): TaskRow[] {
    return this.#d.store.history(owner, limit, offset)
  }

  /** Presence of every known GPU, for health and admins. */
  gpus(): { id: string; online: boolean; epoch: number; since: string | null }[] {
    return this.#d.registry.all().map((g) => ({
      id: g.id,
      online: g.online,
      epoch: g.epoch,
      since: g.since > 0 ? new Date(g.since).toISOString() : null,
    }))
  }

  /** The run_server status word for a task. */
  serviceStatus(row: TaskRow): ServiceStatus {
    switch (row.state) {
      case 'queued':
        return 'queued'
      case 'processing':
        return row.stage === 'synthesizing' || row.stage === 'encoding' ? row.stage : 'processing'
      case 'done':
        return 'done'
      default:
        return 'error'
    }
  }

  #runS(): number {
    const ms = this.#d.store.recentRunMs()
    return ms === null ? this.#d.runEstimateS : Math.max(1, Math.round(ms / 1000))
  }
}

function describe(row: TaskRow, position: number, eta: number, gpusOnline: number): string {
  switch (row.state) {
    case 'queued':
      return queuedMessage(position, eta, gpusOnline)
    case 'processing':
      return row.stage_message ?? stageText(row)
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

function stageText(row: TaskRow): string {
  switch (row.stage) {
    case 'preparing':
      return '正在把文件传到 GPU 服务器'
    case 'queued':
      return 'GPU 服务器排队中'
    case 'synthesizing':
      return `正在合成视频（${Math.round(row.progress)}%）`
    case 'encoding':
      return '正在编码视频'
    default:
      return `正在处理（${Math.round(row.progress)}%）`
  }
}
