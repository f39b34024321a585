/**
 * Webhooks (README "Webhooks"): a submit's `webhook_url` is checked (url-guard.ts) and kept with
 * the task; when the task ends the outbox's final event becomes a message (webhook-intake.ts),
 * POSTed signed and retried from the table (webhook-dispatch.ts) until delivered or given up.
 * Every attempt is a row: `deliveriesOf(taskId)` for the dashboard, `onDelivery` for metrics.
 */
import type { Logger } from 'pino'
import type { WebhookConfig } from '../config.js'
import type { Db } from '../db.js'
import { statusData } from '../routes/task-api.js'
import type { TaskOutbox } from '../task-outbox.js'
import type { TaskService } from '../task-service.js'
import type { TaskStore } from '../task-store.js'
import type { AddressPolicy } from './address-policy.js'
import { checkWebhookUrl, systemResolver, type Resolver } from './url-guard.js'
import { WebhookDispatcher } from './webhook-dispatch.js'
import { WebhookIntake } from './webhook-intake.js'
import { loadWebhookKey } from './webhook-secret.js'
import { WebhookStore, type DeliveryRow, type DeliveryStatus } from './webhook-store.js'

/** One attempt, as the dashboard shows it. */
export interface WebhookDelivery {
  readonly id: number
  readonly task_id: string
  /** The outbox event it tells of; one `webhook-id` per event. */
  readonly event_id: number
  readonly url: string
  readonly attempt: number
  readonly status: DeliveryStatus
  /** The receiver's answer; null: none (timeout, connection error, refused address). */
  readonly http_status: number | null
  readonly error: string | null
  /** ISO times: of the attempt, and of the next one (null after the last). */
  readonly at: string
  readonly next_at: string | null
}

export type DeliveryListener = (delivery: WebhookDelivery) => void

export interface Webhooks {
  /** The submit's check: the URL to store, or WEBHOOK_URL_REFUSED. */
  checkUrl(raw: string, requestHost: string | null): Promise<string>
  /** Every attempt for a task, oldest first. */
  deliveriesOf(taskId: string): WebhookDelivery[]
  /** Each attempt once recorded (metrics); returns the unsubscribe. */
  onDelivery(listener: DeliveryListener): () => void
  close(): Promise<void>
}

export interface WebhookDeps {
  readonly db: Db
  readonly dataDir: string
  readonly outbox: TaskOutbox
  readonly store: Pick<TaskStore, 'get'>
  readonly views: Pick<TaskService, 'view'>
  readonly log: Logger
  /** Wall-clock ms (the signed timestamp). */
  readonly now: () => number
  /** Relay-clock ms (gateway/relay-clock.ts): when attempts are due, how old a message is. */
  readonly relay: () => number
  /** The gateway's HTTP port once it listens: its own listener is never a target. */
  readonly ownPort: () => number | null
  /** Name resolution (default: the system's). */
  readonly resolve?: Resolver
}

export async function startWebhooks(config: WebhookConfig, deps: WebhookDeps): Promise<Webhooks> {
  const log = deps.log.child({ part: 'webhooks' })
  // Loaded (or made) now; on a full disk the gateway still starts, and each attempt tries again.
  let loaded: Promise<Buffer> | null = null
  const key = (): Promise<Buffer> => {
    loaded ??= loadWebhookKey({ configured: config.secret, dataDir: deps.dataDir, log }).catch(
      (err: unknown) => {
        loaded = null
        throw err
      },
    )
    return loaded
  }
  await key().catch((err: unknown) => {
    log.error({ err }, 'webhook secret not loaded; trying again at the first delivery')
  })
  const policy: AddressPolicy = { allowPrivate: config.allowPrivate, ownPort: deps.ownPort }
  const resolve = deps.resolve ?? systemResolver
  const store = new WebhookStore(deps.db)
  const listeners = new Set<DeliveryListener>()
  const dispatcher = new WebhookDispatcher(
    { key, policy, ...config },
    {
      store,
      log,
      now: deps.relay,
      wall: deps.now,
      resolve,
      onDelivery: (row) => {
        const delivery = view(row)
        for (const listener of listeners) {
          try {
            listener(delivery)
          } catch (err) {
            log.error({ err }, 'webhook delivery listener failed')
          }
        }
      },
    },
  )
  const intake = new WebhookIntake({
    store,
    outbox: deps.outbox,
    statusOf: (taskId, state) => {
      const row = deps.store.get(taskId)
      return row ? { ...statusData(deps.views.view(row)), status: state } : null
    },
    log,
    now: deps.relay,
    onQueued: () => {
      dispatcher.pump()
    },
  })
  intake.start()
  dispatcher.pump()
  return {
    checkUrl: (raw, requestHost) => checkWebhookUrl({ raw, requestHost, policy, resolve }),
    deliveriesOf: (taskId) => store.deliveriesOf(taskId).map(view),
    onDelivery(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      intake.close()
      await dispatcher.close()
    },
  }
}

function view(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    task_id: row.task_id,
    event_id: row.event_id,
    url: row.url,
    attempt: row.attempt,
    status: row.status,
    http_status: row.http_status,
    error: row.error,
    at: new Date(row.at).toISOString(),
    next_at: row.next_at === null ? null : new Date(row.next_at).toISOString(),
  }
}
