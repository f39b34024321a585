/**
 * The gateway's environment variables and settings for its operations parts: power on demand
 * (gateway/power/) and webhooks (gateway/webhooks/). Part of the one gateway schema (config.ts
 * spreads OPERATIONS_ENV into GatewayEnv); kept apart so each file stays one concept.
 */
import { z } from 'zod'
import { env } from '../lib/config.js'
import { isWebhookSecret } from './webhooks/webhook-secret.js'
import { GpuId } from '../protocol/index.js'

/** Power on demand and webhooks (documented in .env.example and the README). */
export const OPERATIONS_ENV = {
  /**
   * Power on demand (README "GPU power on demand"): `auto` decides by itself when a command or
   * URL below is set; `on` also with none (the MQTT message alone, for an external agent).
   */
  POWER_CONTROL: z.enum(['auto', 'on', 'off']).default('auto'),
  /** Run with `sh -c` to switch a GPU on / off (RELAY_GPU_ID, RELAY_POWER_* in its environment). */
  POWER_ON_COMMAND: z.string().min(1).optional(),
  POWER_OFF_COMMAND: z.string().min(1).optional(),
  /** POSTed a JSON `{gpu_id, action, reason, request_id, at}` to switch a GPU on / off. */
  POWER_ON_URL: z.url({ protocol: /^https?$/ }).optional(),
  POWER_OFF_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** The GPUs the relay may power; empty: the GPU ids in the credentials (else GPU_IDS). */
  POWER_GPU_IDS: env.list('').pipe(z.array(GpuId)),
  /** Power-off is asked for after the queue has been empty and every GPU idle this long. */
  POWER_IDLE_MINUTES: env.int(30, 1),
  /** Overrides POWER_IDLE_MINUTES in ms (tests). */
  POWER_IDLE_MS: z.coerce.number().int().min(1).optional(),
  /** A GPU asked to start that is not ready within this is asked again (then 2×, 4×, up to 8×). */
  POWER_BOOT_DEADLINE_MS: env.ms(600_000),
  /** A power command still running after this is killed (its process group) and recorded so. */
  POWER_COMMAND_TIMEOUT_MS: env.ms(60_000),
  /** Webhooks (README "Webhooks"): `whsec_` + base64; unset: DATA_DIR/webhook-secret, made once. */
  WEBHOOK_SECRET: z
    .string()
    .refine(isWebhookSecret, { error: 'whsec_ followed by the base64 of 24 to 64 bytes' })
    .optional(),
  /** Webhook URLs on private, loopback and link-local addresses allowed (never the gateway's own). */
  WEBHOOK_ALLOW_PRIVATE: env.bool(false),
  WEBHOOK_MAX_ATTEMPTS: env.int(8, 1),
  /** One attempt: connect, TLS and the answer's headers. */
  WEBHOOK_TIMEOUT_MS: env.ms(10_000),
  /** A message not delivered this long after its task ended is given up. */
  WEBHOOK_MAX_AGE_MS: env.ms(24 * 60 * 60 * 1000),
  /** Retry n waits between half and all of base·2^(n−1), at most the max. */
  WEBHOOK_BACKOFF_BASE_MS: env.ms(5_000),
  WEBHOOK_BACKOFF_MAX_MS: env.ms(60 * 60 * 1000),
  /** Attempts under way at once (two per receiver at most). */
  WEBHOOK_CONCURRENCY: env.int(8, 1),
}

type OperationsEnv = z.infer<z.ZodObject<typeof OPERATIONS_ENV>>

/** Webhook delivery (gateway/webhooks/). */
export interface WebhookConfig {
  /** WEBHOOK_SECRET; null: the data folder's, made on first start. */
  readonly secret: string | null
  readonly allowPrivate: boolean
  readonly maxAttempts: number
  readonly timeoutMs: number
  readonly maxAgeMs: number
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  readonly concurrency: number
}

export const DEFAULT_WEBHOOK_CONFIG: WebhookConfig = Object.freeze({
  secret: null,
  allowPrivate: false,
  maxAttempts: 8,
  timeoutMs: 10_000,
  maxAgeMs: 24 * 60 * 60 * 1000,
  backoffBaseMs: 5_000,
  backoffMaxMs: 60 * 60 * 1000,
  concurrency: 8,
})

/** Power on demand (gateway/power/). */
export interface PowerSettings {
  /** The gateway asks for power by itself; false: only an admin's requests. */
  readonly auto: boolean
  readonly onCommand: string | null
  readonly offCommand: string | null
  readonly onUrl: string | null
  readonly offUrl: string | null
  /** The GPUs the relay may power; null: the credentials' GPU ids, else `gpuIds`. */
  readonly gpuIds: readonly string[] | null
  readonly idleMs: number
  readonly bootDeadlineMs: number
  readonly commandTimeoutMs: number
}

/** Power off unless configured: nothing is asked by itself. */
export const POWER_DEFAULTS: PowerSettings = Object.freeze({
  auto: false,
  onCommand: null,
  offCommand: null,
  onUrl: null,
  offUrl: null,
  gpuIds: null,
  idleMs: 30 * 60_000,
  bootDeadlineMs: 600_000,
  commandTimeoutMs: 60_000,
})

export function powerSettings(e: OperationsEnv): PowerSettings {
  const channels = [e.POWER_ON_COMMAND, e.POWER_OFF_COMMAND, e.POWER_ON_URL, e.POWER_OFF_URL]
  return Object.freeze({
    auto:
      e.POWER_CONTROL === 'on' ||
      (e.POWER_CONTROL === 'auto' && channels.some((c) => c !== undefined)),
    onCommand: e.POWER_ON_COMMAND ?? null,
    offCommand: e.POWER_OFF_COMMAND ?? null,
    onUrl: e.POWER_ON_URL ?? null,
    offUrl: e.POWER_OFF_URL ?? null,
    gpuIds: e.POWER_GPU_IDS.length > 0 ? Object.freeze([...e.POWER_GPU_IDS]) : null,
    idleMs: e.POWER_IDLE_MS ?? e.POWER_IDLE_MINUTES * 60_000,
    bootDeadlineMs: e.POWER_BOOT_DEADLINE_MS,
    commandTimeoutMs: e.POWER_COMMAND_TIMEOUT_MS,
  })
}

export function webhookConfig(e: OperationsEnv): WebhookConfig {
  return Object.freeze({
    secret: e.WEBHOOK_SECRET ?? null,
    allowPrivate: e.WEBHOOK_ALLOW_PRIVATE,
    maxAttempts: e.WEBHOOK_MAX_ATTEMPTS,
    timeoutMs: e.WEBHOOK_TIMEOUT_MS,
    maxAgeMs: e.WEBHOOK_MAX_AGE_MS,
    backoffBaseMs: e.WEBHOOK_BACKOFF_BASE_MS,
    backoffMaxMs: e.WEBHOOK_BACKOFF_MAX_MS,
    concurrency: e.WEBHOOK_CONCURRENCY,
  })
}
