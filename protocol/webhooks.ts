/**
 * What the gateway POSTs to a submit's `webhook_url` when the task ends (README "Webhooks"),
 * signed as Standard Webhooks do: `webhook-id` (the same on every retry of one event),
 * `webhook-timestamp` (epoch seconds of the attempt) and `webhook-signature`
 * (`v1,` + base64 HMAC-SHA256 over `${id}.${timestamp}.${body}` with the deployment's secret).
 */
import { z } from 'zod'
import { IsoTime } from './common.js'
import { TaskStatusData } from './http.js'

export const WEBHOOK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const

/** One type per final state. */
export const WebhookEventType = z.enum([
  'task.done',
  'task.error',
  'task.cancelled',
  'task.expired',
])
export type WebhookEventType = z.infer<typeof WebhookEventType>

/** The body: Standard Webhooks' `{type, timestamp, data}`, `data` as the task API's status. */
export const WebhookPayload = z.object({
  type: WebhookEventType,
  /** When the task ended (the outbox event's time). */
  timestamp: IsoTime,
  data: TaskStatusData,
})
export type WebhookPayload = z.infer<typeof WebhookPayload>
