/**
 * What the HTTP routes read: a task as its owner sees it (position, estimate, the words to show),
 * the queue, the GPUs. Computed from SQLite; nothing here changes a row (see task-actions.ts).
 */
import { bootEstimateS, bootRemainingS } from './boot-estimate.js'
import type { EstimateReads, QueueAhead } from './estimate-store.js'
import { startEtaS, waitingText, type WaitReason, type WaitingTexts } from './estimates.js'
import type { GpuRegistry } from './gpu-registry.js'
import { remainingRunMs, runModel, runMsFor, workAheadMs } from './run-estimate.js'
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
  /** The estimates' reads (recent runs, the queue ahead, what runs now). */
  readonly estimates: EstimateReads
  /** Recent boot durations in ms, newest first (boot-history.ts). */
  readonly boots: () => readonly number[]
  /** Relay ms since the boot under way was asked for; null when none was (boot-history.ts). */
  readonly bootElapsedMs: () => number | null
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
    const gpus = this.#gpuCounts()
    const ahead = row.state === 'queued' ? this.#d.estimates.queueAhead(row.seq) : null
    const position = ahead ? ahead.count + 1 : 0
    const waiting = ahead ? gpus.reason : null
    const eta = ahead ? this.#startEta(ahead, gpus, row.created_at) : 0
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
    const ahead = this.#d.estimates.queueAhead(Number.MAX_SAFE_INTEGER)
    const eta = this.#startEta(ahead, gpus, this.#d.now())
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

  #gpuCounts(): GpuCounts {
    const { registry } = this.#d
    const online = registry.online()
    const ready = registry.ready()
    const reason: WaitReason =
      ready.length > 0 ? 'queued' : online.length > 0 ? 'starting' : 'offline'
    // While none is ready: those online are expected to be, else every known one.
    const coming = online.length > 0 ? online : registry.all()
    return {
      online: online.length,
      ready: ready.length,
      capacity: capacityOf(ready),
      comingCapacity: capacityOf(coming),
      reason,
    }
  }

  /**
   * When a task with `ahead` queued before it should start: after what runs on the ready GPUs
   * and the runs ahead, slot by slot (estimates.ts); while none is ready, from the boot's end.
   */
  #startEta(ahead: QueueAhead, gpus: GpuCounts, since: number): number {
    const { estimates, runEstimateS, now } = this.#d
    const model = runModel(estimates.recentRuns(), runEstimateS * 1000)
    const ready = gpus.ready > 0
    const at = now()
    const runningS = ready
      ? estimates.running().map(
          (t) =>
            remainingRunMs({
              estimateMs: runMsFor(model, t.audioMs),
              elapsedMs: at - t.claimedAt,
              progress: t.progress,
            }) / 1000,
        )
      : []
    return startEtaS({
      ahead: ahead.count,
      aheadWorkS: workAheadMs(model, ahead) / 1000,
      runningS,
      ready,
      capacity: ready ? gpus.capacity : gpus.comingCapacity,
      bootS: ready ? 0 : this.#bootS(since),
    })
  }

  /**
   * The boot estimate, counted down from when the boot began and made again once over
   * (boot-estimate.ts). A boot the relay asked for (power on demand) began at its first power-on
   * request, on the relay clock, as the learned boots are measured. Else the wait began at the
   * later of `since` and the moment the last GPU went offline, on the wall clock like the
   * presence times it compares with (a step shows the full estimate or a later one, and decides
   * nothing). A GPU coming online whose service still loads does not restart it: that is the
   * same boot going on.
   */
  #bootS(since: number): number {
    const asked = this.#d.bootElapsedMs()
    const offline = this.#d.registry.all().filter((g) => !g.online)
    const wentOffline = Math.max(0, ...offline.map((g) => g.since))
    const elapsedS =
      asked === null
        ? (this.#d.now() - Math.max(since, wentOffline)) / 1000
        : Math.max(0, asked) / 1000
    const boots = this.#d.boots()
    return bootRemainingS({
      bootS: bootEstimateS(boots, this.#d.bootEstimateS),
      elapsedS,
      historyS: boots.map((ms) => ms / 1000),
    })
  }
}

interface GpuCounts {
  readonly online: number
  readonly ready: number
  /** The ready GPUs' capacities, added up. */
  readonly capacity: number
  /** What is expected to be ready next: the online GPUs' capacities, else every known one's. */
  readonly comingCapacity: number
  readonly reason: WaitReason
}

function capacityOf(gpus: readonly { readonly capacity: number }[]): number {
  return gpus.reduce((sum, g) => sum + g.capacity, 0)
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
