/**
 * What the HTTP routes ask of the gateway: submit a task, describe it, describe the queue.
 * Views are computed from the SQLite row; nothing here talks to a GPU.
 */
import { randomUUID } from 'node:crypto'
import type { Dispatcher } from './dispatcher.js'
import { etaSeconds, queuedMessage } from './estimates.js'
import type { FilePool } from './file-pool.js'
import type { GpuRegistry } from './gpu-registry.js'
import type { TaskRow, TaskStore } from './task-store.js'
import type { AdminTopics } from './admin-topics.js'
import { AppError } from '../lib/errors.js'
import type { Logger } from 'pino'
import type { FileRef, ServiceStatus } from '../protocol/index.js'

export interface TaskServiceDeps {
  readonly store: TaskStore
  readonly pool: FilePool
  readonly registry: GpuRegistry
  readonly dispatcher: Dispatcher
  readonly admin: AdminTopics
  readonly log: Logger
  readonly now: () => number
  readonly queueTtlMs: number
  readonly bootEstimateS: number
  readonly runEstimateS: number
}

export interface SubmitInput {
  readonly owner: string | null
  readonly source: 'task-api' | 'heygem-api'
  readonly audio: { readonly hash: string; readonly ext: string }
  readonly video: { readonly hash: string; readonly ext: string }
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

  /** Write, then publish (DESIGN §3.1). */
  async submit(input: SubmitInput): Promise<TaskView> {
    const { store, registry, dispatcher, admin, log, now } = this.#d
    const audio = await this.#inputFile(input.audio, '音频')
    const video = await this.#inputFile(input.video, '视频')
    const at = now()
    const gpuId = registry.pick((id) => store.loadOf(id))
    const row = store.insert({
      id: randomUUID(),
      owner: input.owner,
      source: input.source,
      gpuId,
      audio,
      video,
      options: {},
      now: at,
      expiresAt: at + this.#d.queueTtlMs,
    })
    const view = this.view(row)
    log.info(
      {
        taskId: row.id,
        gpuId,
        position: view.position,
        gpusOnline: view.gpusOnline,
        etaSeconds: view.etaSeconds,
      },
      'task queued',
    )
    dispatcher.publishTask(row, 'submitted')
    admin.task(row)
    return view
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

  async #inputFile(ref: { hash: string; ext: string }, what: string): Promise<FileRef> {
    const { pool } = this.#d
    const stored = pool.get(ref.hash)
    if (!stored || !(await pool.has(ref.hash))) {
      throw new AppError('FILE_NOT_FOUND', 404, `${what}文件 ${ref.hash} 不在服务器上，请先上传`, {
        details: { hash: ref.hash },
      })
    }
    return { hash: stored.hash, ext: ref.ext, size: stored.size }
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
