/**
 * Delivery of the pending messages (webhook-store.ts): at most `concurrency` attempts at once
 * and two per receiver (host and port), so a receiver that never answers holds two slots for
 * `timeoutMs` and the others go on. Each attempt re-checks the URL's addresses and connects to
 * the one checked (url-guard.ts), signs the body anew (webhook-secret.ts) and is recorded with
 * its outcome: a 2xx is delivered; anything else is retried with exponential backoff and
 * jitter until `maxAttempts` or `maxAgeMs`, then given up. The schedule is in the table, so a
 * restart resumes it; an attempt cut by shutdown is not recorded and is made again.
 */
import type { Logger } from 'pino'
import type { AddressPolicy } from './address-policy.js'
import type { WebhookConfig } from '../config-operations.js'
import { signWebhook } from './webhook-secret.js'
import { sendWebhook, type SendResult } from './webhook-send.js'
import type { DeliveryRow, MessageRow, WebhookStore } from './webhook-store.js'
import { parseWebhookUrl, resolveTarget, type Resolver } from './url-guard.js'
import { WEBHOOK_HEADERS } from '../../protocol/index.js'

/** The configured bounds and schedule, with the key and the address policy made from the rest. */
export interface DispatchSettings extends Omit<WebhookConfig, 'secret' | 'allowPrivate'> {
  /** The signing key (webhook-secret.ts); a failure (a full disk on first start) is retried. */
  readonly key: () => Promise<Buffer>
  readonly policy: AddressPolicy
}

export interface DispatchDeps {
  readonly store: WebhookStore
  readonly log: Logger
  /**
   * Relay-clock ms (docs/guarantees.md: durations do not trust the wall clock): the schedule and
   * the age limit are kept across restarts in these, so a clock step neither fires nor gives up.
   */
  readonly now: () => number
  /** Wall-clock ms: only the signed `webhook-timestamp`, which receivers compare with their clock. */
  readonly wall: () => number
  readonly resolve: Resolver
  readonly onDelivery: (delivery: DeliveryRow) => void
  readonly random?: () => number
}

const PER_RECEIVER = 2
const WAKE_MAX_MS = 60_000
const RETRY_MS = 5_000

export class WebhookDispatcher {
  readonly #s: DispatchSettings
  readonly #d: DispatchDeps
  /** Event id → receiver of the attempts under way. */
  readonly #inflight = new Map<number, string>()
  readonly #running = new Set<Promise<void>>()
  /** Event id → relay ms: an attempt that could not be recorded is not made again before. */
  readonly #coolDown = new Map<number, number>()
  readonly #abort = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(settings: DispatchSettings, deps: DispatchDeps) {
    this.#s = settings
    this.#d = deps
  }

  /** Start what is due and free to go; wake again when the next one is due. */
  pump(): void {
    if (this.#closed) return
    clearTimeout(this.#timer)
    let wait = RETRY_MS
    try {
      const now = this.#d.now()
      this.#coolDown.forEach((until, eventId) => {
        if (until <= now) this.#coolDown.delete(eventId)
      })
      while (this.#inflight.size < this.#s.concurrency) {
        const row = this.#d.store.nextDue(now, {
          eventIds: [...this.#inflight.keys(), ...this.#coolDown.keys()],
          receivers: this.#busyReceivers(),
        })
        if (!row) break
        this.#start(row, row.receiver)
      }
      const next = this.#d.store.nextDueAfter(now)
      wait = next === null ? WAKE_MAX_MS : Math.min(WAKE_MAX_MS, Math.max(0, next - now))
      // A message held back is due already: wake when its hold ends.
      for (const until of this.#coolDown.values()) wait = Math.min(wait, Math.max(0, until - now))
    } catch (err) {
      this.#d.log.error({ err }, 'webhook dispatch failed; trying again soon')
    }
    this.#timer = setTimeout(() => {
      this.pump()
    }, wait)
  }

  /** Stop: attempts under way are cut (not recorded: made again after the next start). */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#abort.abort()
    await Promise.allSettled([...this.#running])
  }

  /** Receivers with PER_RECEIVER attempts under way. */
  #busyReceivers(): string[] {
    const counts = new Map<string, number>()
    for (const r of this.#inflight.values()) counts.set(r, (counts.get(r) ?? 0) + 1)
    return [...counts].filter(([, n]) => n >= PER_RECEIVER).map(([r]) => r)
  }

  #start(row: MessageRow, receiver: string): void {
    this.#inflight.set(row.event_id, receiver)
    const run = this.#attempt(row)
      .catch((err: unknown) => {
        // Not recorded (a full disk): the row still says due. Held back a while, so a receiver
        // is not sent the same message again and again while nothing can be written.
        this.#coolDown.set(row.event_id, this.#d.now() + RETRY_MS)
        this.#d.log.error({ err, taskId: row.task_id }, 'webhook attempt not recorded')
      })
      .finally(() => {
        this.#inflight.delete(row.event_id)
        this.#running.delete(run)
        this.pump()
      })
    this.#running.add(run)
  }

  async #attempt(row: MessageRow): Promise<void> {
    const result = await this.#send(row)
    if (this.#closed) return
    const { store, now, log } = this.#d
    const attempt = row.attempts + 1
    const at = now()
    const delivered =
      result.httpStatus !== null && result.httpStatus >= 200 && result.httpStatus < 300
    const last = attempt >= this.#s.maxAttempts || at - row.created_at >= this.#s.maxAgeMs
    const status = delivered ? 'delivered' : last ? 'given-up' : 'failed'
    const nextAt =
      status === 'failed'
        ? Math.min(at + this.#backoff(attempt), row.created_at + this.#s.maxAgeMs)
        : null
    // The attempt's row shows wall-clock times (the dashboard); the schedule stays relay ms.
    const toWall = this.#d.wall() - at
    const delivery = store.record(
      {
        event_id: row.event_id,
        task_id: row.task_id,
        url: row.url,
        attempt,
        status,
        http_status: result.httpStatus,
        error: delivered ? null : (result.error ?? `HTTP ${String(result.httpStatus)}`),
        at: at + toWall,
        next_at: nextAt === null ? null : nextAt + toWall,
      },
      { state: status === 'failed' ? 'pending' : status, nextAt },
    )
    log.info(
      {
        taskId: row.task_id,
        eventId: row.event_id,
        attempt,
        status,
        httpStatus: result.httpStatus,
      },
      'webhook attempt',
    )
    this.#d.onDelivery(delivery)
  }

  async #send(row: MessageRow): Promise<SendResult> {
    const target = parseWebhookUrl(row.url)
    if (!target) return { httpStatus: null, error: 'not a webhook URL' }
    const resolved = await resolveTarget(target, this.#s.policy, this.#d.resolve)
    if (typeof resolved === 'string') {
      return { httpStatus: null, error: `refused: ${resolved} address` }
    }
    let key: Buffer
    try {
      key = await this.#s.key()
    } catch (err) {
      this.#d.log.error({ err }, 'webhook secret unavailable')
      return { httpStatus: null, error: 'webhook secret unavailable' }
    }
    const timestamp = Math.floor(this.#d.wall() / 1000)
    const signature = signWebhook(key, { id: row.msg_id, timestamp, body: row.body })
    return sendWebhook({
      target: resolved,
      headers: {
        [WEBHOOK_HEADERS.id]: row.msg_id,
        [WEBHOOK_HEADERS.timestamp]: String(timestamp),
        [WEBHOOK_HEADERS.signature]: signature,
      },
      body: row.body,
      timeoutMs: this.#s.timeoutMs,
      signal: this.#abort.signal,
    })
  }

  /** base·2^(n−1), capped, the upper half of it at random ("equal jitter"). */
  #backoff(attempt: number): number {
    const ms = Math.min(this.#s.backoffMaxMs, this.#s.backoffBaseMs * 2 ** (attempt - 1))
    return Math.round(ms / 2 + ((this.#d.random ?? Math.random)() * ms) / 2)
  }
}
