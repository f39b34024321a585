/** What every route group is given, and the checks they share. */
import type { Request } from 'express'
import type { Logger } from 'pino'
import type { MqttLink } from '../../lib/mqtt.js'
import type { AdminSources } from '../admin-views.js'
import type { AssetStore } from '../assets-store.js'
import type { EstimateAccuracy } from '../estimate-accuracy.js'
import type { FilePool } from '../file-pool.js'
import type { HandOvers } from '../hand-overs.js'
import type { HttpAuth } from '../http-auth.js'
import type { RateLimiter } from '../rate-limit.js'
import type { TaskActions } from '../task-actions.js'
import type { TaskLifecycle } from '../task-lifecycle.js'
import type { TaskOutbox } from '../task-outbox.js'
import type { TaskService } from '../task-service.js'
import type { TaskStore } from '../task-store.js'
import type { PowerControl } from '../power/power.js'
import type { Webhooks } from '../webhooks/webhooks.js'

export interface RouteDeps {
  readonly views: TaskService
  readonly actions: TaskActions
  readonly store: TaskStore
  /** The one writer of task rows (the result route records a hand-over through it). */
  readonly lifecycle: TaskLifecycle
  /** The task event stream: `after(id, limit)` to resume, `subscribe` for what comes next. */
  readonly outbox: TaskOutbox
  readonly pool: FilePool
  readonly assets: AssetStore
  readonly auth: HttpAuth
  readonly submitLimiter: RateLimiter
  readonly uploadLimiter: RateLimiter
  readonly uploadMaxBytes: number
  /** Largest result a GPU may hand over (`RESULT_MAX_BYTES`; default: `uploadMaxBytes`). */
  readonly resultMaxBytes?: number
  /** Result hand-overs under way; the result route marks each try and its bytes. */
  readonly handOvers?: HandOvers
  /** The status word a task waiting for a GPU that is not ready shows on the compatible API. */
  readonly waitingStatus: 'processing' | 'queued'
  readonly log: Logger
  readonly now: () => number
  /** The task event stream (task-events.ts): streams per caller, heartbeat; absent: defaults. */
  readonly taskEvents?: { readonly maxPerCaller: number; readonly heartbeatMs: number }
  /** The gateway's MQTT link (health); absent: not shown. */
  readonly mqttLink?: () => MqttLink
  /** Power on demand (gateway/power/): health's per-GPU view, `/api/relay/power`; absent: none. */
  readonly power?: PowerControl
  /** How good past start estimates were (`GET /api/relay/admin/estimates`); absent: no route. */
  readonly estimateAccuracy?: EstimateAccuracy
  /** Webhooks: the submits check `webhook_url` with it; absent: a `webhook_url` is refused. */
  readonly webhooks?: Pick<Webhooks, 'checkUrl' | 'deliveriesOf'>
  /** issue-10 dashboard: what the admin API reads (routes/admin-api.ts); absent: not mounted. */
  readonly admin?: AdminSources
}

/**
 * Rate limits count per caller: its address and the credential it proved. A `license_key` is only
 * stated, so it is no part of the key (changing it on every request must not get past a limit).
 */
export function limitKey(req: Request, auth: HttpAuth): string {
  return `${auth.principal(req).kind}@${auth.addressOf(req)}`
}
