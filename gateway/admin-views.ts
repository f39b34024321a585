/**
 * What the dashboard's admin API answers (routes/admin-api.ts): the GPUs (presence, readiness,
 * epoch, what runs on each, tasks done today, power when a power source is wired), the queue
 * with each task's estimated start, the history, and one task's detail (its timeline from the
 * outbox, inputs, result, error, webhook deliveries when a webhook source is wired). Read-only.
 */
import type { AdminReads, HistoryFilter } from './admin-reads.js'
import type { GpuPresence, GpuRegistry } from './gpu-registry.js'
import type { TaskOutbox } from './task-outbox.js'
import { failureText, resultUrl, type TaskService } from './task-service.js'
import type { TaskRow } from './task-store.js'
import type { PowerView } from './power/power.js'
import type { TaskEvent } from '../protocol/index.js'

/** The power module (gateway/power/): its view is `GET /api/relay/power`'s data. */
export interface PowerSource {
  view(): PowerView
}

/** The webhook sender, when wired: every delivery attempt of a task. */
export interface WebhookSource {
  deliveriesOf(taskId: string): readonly unknown[]
}

export interface AdminSources {
  readonly registry: GpuRegistry
  readonly reads: AdminReads
  readonly power?: PowerSource
  readonly webhooks?: WebhookSource
}

export interface AdminViewsDeps extends AdminSources {
  readonly views: TaskService
  readonly outbox: TaskOutbox
  readonly now: () => number
}

/** Power requests shown per GPU. */
const POWER_REQUESTS_SHOWN = 5
/** Queued tasks listed (the count says how many there are in all). */
const QUEUE_SHOWN = 200

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

/** A task as a line of a list. */
export function taskSummary(row: TaskRow): Record<string, unknown> {
  return {
    task_id: row.id,
    seq: row.seq,
    owner: row.owner,
    source: row.source,
    state: row.state,
    attempt: row.attempt,
    gpu_id: row.gpu_id,
    progress: row.progress,
    stage: row.stage,
    error_msg: row.error_msg,
    created_at: iso(row.created_at),
    claimed_at: iso(row.claimed_at),
    finished_at: iso(row.finished_at),
  }
}

/** Local midnight of the day `now` falls in (the gateway's time zone). */
export function startOfDay(now: number): number {
  const day = new Date(now)
  day.setHours(0, 0, 0, 0)
  return day.getTime()
}

/** One GPU's row: presence, what runs on it, done today and its power (null: no power source). */
export function gpuRow(
  gpu: GpuPresence,
  on: {
    readonly running: readonly Record<string, unknown>[]
    readonly doneToday: number
    readonly power: ReturnType<PowerSource['view']> | null
  },
): Record<string, unknown> {
  const power = on.power?.gpus.find((p) => p.gpu_id === gpu.id) ?? null
  const requests = on.power?.requests.filter((r) => r.gpu_id === gpu.id) ?? null
  return {
    id: gpu.id,
    online: gpu.online,
    since: gpu.since > 0 ? iso(gpu.since) : null,
    last_seen: gpu.lastSeen > 0 ? iso(gpu.lastSeen) : null,
    ready: gpu.online && gpu.ready,
    service: gpu.online ? gpu.service : null,
    epoch: gpu.epoch,
    capacity: gpu.capacity,
    types: gpu.types,
    running: on.running,
    done_today: on.doneToday,
    power,
    power_requests: requests?.slice(0, POWER_REQUESTS_SHOWN) ?? null,
  }
}

export class AdminViews {
  readonly #d: AdminViewsDeps

  constructor(deps: AdminViewsDeps) {
    this.#d = deps
  }

  gpus(): Record<string, unknown> {
    const { registry, reads, power, now } = this.#d
    const running = reads.inState('processing', QUEUE_SHOWN)
    const done = reads.doneSince(startOfDay(now()))
    const powerView = power ? power.view() : null
    return {
      gpus: registry.all().map((gpu) =>
        gpuRow(gpu, {
          running: running.filter((r) => r.gpu_id === gpu.id).map((r) => this.#running(r)),
          doneToday: done.get(gpu.id) ?? 0,
          power: powerView,
        }),
      ),
      power: powerView !== null,
    }
  }

  queue(): Record<string, unknown> {
    const { reads, views, now } = this.#d
    const at = now()
    const queued = reads.inState('queued', QUEUE_SHOWN).map((row) => {
      const view = views.view(row)
      return {
        ...taskSummary(row),
        position: view.position,
        age_s: Math.max(0, Math.round((at - row.created_at) / 1000)),
        eta_seconds: view.etaSeconds,
        estimated_start: iso(at + view.etaSeconds * 1000),
        waiting: view.waiting,
        message: view.message,
      }
    })
    return {
      summary: views.queue(),
      queued,
      queued_total: reads.countInState('queued'),
      running: reads.inState('processing', QUEUE_SHOWN).map((r) => this.#running(r)),
    }
  }

  history(filter: HistoryFilter): Record<string, unknown> {
    const page = this.#d.reads.history(filter)
    return { tasks: page.rows.map(taskSummary), next_before: page.nextBefore }
  }

  /** One task: everything about it; undefined when there is no such task. */
  detail(taskId: string): Record<string, unknown> | undefined {
    const { views, outbox, webhooks } = this.#d
    const row = views.find(taskId)
    if (!row) return undefined
    const view = views.view(row)
    return {
      task: {
        ...taskSummary(row),
        type: row.type,
        message: view.message,
        position: view.position,
        eta_seconds: view.etaSeconds,
        result_url: resultUrl(row),
        result: row.result_hash === null ? null : { hash: row.result_hash, size: row.result_size },
        failure: failureText(view),
        inputs: {
          audio: { hash: row.audio_hash, ext: row.audio_ext, size: row.audio_size },
          video: { hash: row.video_hash, ext: row.video_ext, size: row.video_size },
        },
        expires_at: iso(row.expires_at),
      },
      timeline: outbox.ofTask(taskId).map(timelineEntry),
      webhooks: webhooks ? webhooks.deliveriesOf(taskId) : null,
    }
  }

  #running(row: TaskRow): Record<string, unknown> {
    return { ...taskSummary(row), message: this.#d.views.view(row).message }
  }
}

function timelineEntry(event: TaskEvent): Record<string, unknown> {
  return {
    id: event.id,
    at: event.at,
    kind: event.kind,
    from: event.from,
    state: event.state,
    gpu_id: event.gpuId,
    attempt: event.attempt,
    progress: event.progress ?? null,
    stage: event.stage ?? null,
    note: event.note ?? null,
  }
}
