import { join } from 'node:path'
import { z } from 'zod'
import { env, parseEnv } from '../lib/config.js'
import { loadCredentials, type Credentials } from '../lib/credentials.js'
import { parseByteSize } from './body-gate.js'
import { DEFAULT_WAITING_TEXTS, type WaitingTexts } from './estimates.js'
import {
  DEFAULT_WEBHOOK_CONFIG,
  OPERATIONS_ENV,
  POWER_DEFAULTS,
  powerSettings,
  webhookConfig,
  type PowerSettings,
  type WebhookConfig,
} from './config-operations.js'
import { DEFAULT_TOPIC_ROOT, GpuId } from '../protocol/index.js'

export { DEFAULT_WEBHOOK_CONFIG, POWER_DEFAULTS } from './config-operations.js'
export type { PowerSettings, WebhookConfig } from './config-operations.js'

/** Environment variables of the gateway (documented in .env.example and the README). */
export const GatewayEnv = z.object({
  GATEWAY_HOST: env.str('0.0.0.0'),
  GATEWAY_PORT: env.port(8383),
  DATA_DIR: env.str('./data/gateway'),
  /** Empty: start the embedded broker. Otherwise the broker to use, e.g. mqtt://mosquitto:1883. */
  MQTT_URL: z.url({ protocol: /^(mqtts?|wss?|tcp)$/ }).optional(),
  MQTT_TOPIC_ROOT: env.str(DEFAULT_TOPIC_ROOT),
  GATEWAY_MQTT_CLIENT_ID: env.str('gpu-relay-gateway'),
  BROKER_HOST: env.str('0.0.0.0'),
  BROKER_PORT: env.port(1883),
  /** 0 picks a free port; "off" disables MQTT over WebSocket. */
  BROKER_WS_PORT: env.portOrOff(8083),
  /** The embedded broker keeps its sessions in DATA_DIR/broker.sqlite; "memory" keeps them in memory. */
  BROKER_PERSISTENCE: z.enum(['sqlite', 'memory']).default('sqlite'),
  /** Both set: mqtts on BROKER_TLS_PORT and wss instead of ws. */
  BROKER_TLS_CERT: z.string().min(1).optional(),
  BROKER_TLS_KEY: z.string().min(1).optional(),
  BROKER_TLS_PORT: env.port(8883),
  /** Development only: MQTT connections without credentials are let in, unrestricted. */
  MQTT_ALLOW_ANONYMOUS: env.bool(false),
  MQTT_MAX_PAYLOAD_BYTES: env.int(256 * 1024, 1024),
  /** Embedded broker: open MQTT connections per client address (TCP, TLS, WebSocket together). */
  MQTT_MAX_CONNECTIONS_PER_IP: env.int(64, 1),
  /** Embedded broker: a connection without a completed CONNECT this long after accept is closed. */
  MQTT_CONNECT_TIMEOUT_MS: env.ms(5_000),
  /** Embedded broker: a client with more unwritten outgoing bytes is disconnected (session kept). */
  MQTT_MAX_OUTGOING_BYTES: env.int(1024 * 1024, 64 * 1024),
  /** Embedded broker: how often it publishes its `$SYS/broker/…` figures (MQTT Explorer). */
  BROKER_SYS_INTERVAL_MS: env.ms(10_000),
  /** The PC app's HEYGEM_API_SECRET: required as `Authorization: Bearer` when set. */
  API_SECRET: z.string().min(8).optional(),
  /** An admin's bearer token: sees every owner's tasks. */
  ADMIN_TOKEN: z.string().min(16).optional(),
  /** A Prometheus server's bearer token: reads `/metrics` and nothing else. */
  METRICS_TOKEN: z.string().min(16).optional(),
  RATE_LIMIT_SUBMITS_PER_MIN: env.int(30, 1),
  RATE_LIMIT_UPLOADS_PER_MIN: env.int(120, 1),
  /** Task event streams (`GET /api/heygem/task/events`) one caller may have open at once. */
  TASK_EVENTS_MAX_PER_CALLER: env.int(8, 1),
  /**
   * A task event stream's heartbeat; a queued task's estimate is refreshed as often. At most 25 s:
   * the PC command line takes a stream silent for 30 s as cut.
   */
  TASK_EVENTS_HEARTBEAT_MS: env.ms(5_000).pipe(z.number().max(25_000)),
  /** GPUs known before any has connected; the first receives work queued before any birth. */
  GPU_IDS: env.list('gpu-1').pipe(z.array(GpuId).min(1)),
  GPU_BOOT_ESTIMATE_S: env.int(120),
  TASK_RUN_ESTIMATE_S: env.int(120, 1),
  /**
   * The status `/api/heygem/progress` reports while a task waits for a GPU that is not ready:
   * `processing` makes the unchanged PC app show the waiting words below (it never shows a
   * `queued` task's message); `queued` keeps run_server's word.
   */
  WAITING_STATUS: z.enum(['processing', 'queued']).default('processing'),
  /** Words for a task waiting while no GPU is online; {position}, {ahead}, {eta} are filled in. */
  WAITING_TEXT_OFFLINE: env.str(DEFAULT_WAITING_TEXTS.offline),
  /** … while a GPU is online but its service is still loading. */
  WAITING_TEXT_STARTING: env.str(DEFAULT_WAITING_TEXTS.starting),
  /** … while a ready GPU runs tasks ahead of it. */
  WAITING_TEXT_QUEUED: env.str(DEFAULT_WAITING_TEXTS.queued),
  QUEUE_TTL_MS: env.ms(24 * 60 * 60 * 1000),
  EXEC_TIMEOUT_MS: env.ms(30 * 60 * 1000),
  STALL_TIMEOUT_MS: env.ms(10 * 60 * 1000),
  RETENTION_MS: env.ms(7 * 24 * 60 * 60 * 1000),
  /** How long an asset (/api/asset/upload) is kept: run_server's 30 days. */
  ASSET_TTL_MS: env.ms(30 * 24 * 60 * 60 * 1000),
  MAX_ATTEMPTS: env.int(3, 1),
  JSON_BODY_LIMIT: env
    .str('1mb')
    .refine((v) => parseByteSize(v) !== null, { error: 'a size such as 1mb, 100kb or 65536' }),
  UPLOAD_MAX_BYTES: env.int(2 * 1024 * 1024 * 1024, 1),
  /** Largest result a GPU may hand over (413 RESULT_TOO_LARGE); unset: UPLOAD_MAX_BYTES. */
  RESULT_MAX_BYTES: z.coerce.number().int().min(1).optional(),
  /** Uploads and submits are refused (507 DISK_FULL) while DATA_DIR has less free space. */
  DISK_MIN_FREE_BYTES: env.int(128 * 1024 * 1024, 0),
  /** A request whose headers have not all arrived within this is closed. */
  HTTP_HEADERS_TIMEOUT_MS: env.ms(10_000),
  /**
   * A connection that sends and reads nothing for this long is closed. Transfers are limited by
   * this and by size, never by their total time (a 2 GiB avatar over a slow uplink arrives).
   */
  HTTP_IDLE_TIMEOUT_MS: env.ms(30_000),
  /**
   * Open HTTP connections per client address, upgraded WebSockets included; one over it is
   * closed as it is accepted, before any byte is read.
   */
  HTTP_MAX_CONNECTIONS_PER_IP: env.int(64, 1),
  /** Refused credentials from one address within 10 minutes before it must wait (1 s, doubling). */
  HTTP_LOGIN_FAILURES_BEFORE_WAIT: env.int(5, 1),
  /**
   * Proxies in front of the gateway (nginx, Caddy), by address: their X-Forwarded-For names the
   * caller, and their own connections are not capped per address. Empty: none trusted.
   */
  HTTP_TRUSTED_PROXIES: env.list('').pipe(z.array(z.ipv4().or(z.ipv6()))),
  ...OPERATIONS_ENV,
  LOG_LEVEL: env.logLevel(),
})

/** What the embedded broker is started with (broker/'s BrokerConfig, structurally). */
export interface EmbeddedBrokerSettings {
  readonly host: string
  readonly port: number
  readonly wsPort: number | null
  /** SQLite file of the embedded broker (sessions, queued messages, retained, wills); null: memory. */
  readonly persistencePath: string | null
  readonly tls: {
    readonly certPath: string
    readonly keyPath: string
    readonly port: number
  } | null
  readonly auth: {
    readonly credentials: Credentials
    readonly allowAnonymous: boolean
    readonly topicRoot: string
    readonly maxPayloadBytes: number
    readonly gatewayClientId: string
  } | null
  /** broker/'s BrokerLimits; absent: its defaults. */
  readonly limits?: {
    readonly maxConnectionsPerIp: number
    readonly connectTimeoutMs: number
    readonly maxOutgoingBytes: number
  }
  /** How often `$SYS/broker/…` is published; absent: broker/'s default (10 s). */
  readonly sysIntervalMs?: number
}

export interface GatewayConfig {
  readonly host: string
  readonly port: number
  readonly dataDir: string
  /** null: embedded broker with the `broker` settings below. */
  readonly mqttUrl: string | null
  readonly topicRoot: string
  readonly mqttClientId: string
  readonly broker: Omit<EmbeddedBrokerSettings, 'auth'>
  /** MQTT logins (gateway, admin, GPUs); the GPUs' secrets also guard the bridge file endpoints. */
  readonly credentials: Credentials
  readonly mqttAllowAnonymous: boolean
  readonly mqttMaxPayloadBytes: number
  /** Required as the PC's bearer token when set; null: the user API is open (development). */
  readonly apiSecret: string | null
  readonly adminToken: string | null
  /** Opens `GET /metrics` only (the admin token opens it too); null: none. */
  readonly metricsToken: string | null
  readonly rateLimits: { readonly submitsPerMinute: number; readonly uploadsPerMinute: number }
  /** The task event stream: open streams per caller, heartbeat (and estimate refresh) period. */
  readonly taskEvents: { readonly maxPerCaller: number; readonly heartbeatMs: number }
  readonly gpuIds: readonly string[]
  readonly bootEstimateS: number
  readonly runEstimateS: number
  /** The compatible API's status word for a task waiting for a GPU that is not ready. */
  readonly waitingStatus: 'processing' | 'queued'
  readonly waitingTexts: WaitingTexts
  readonly queueTtlMs: number
  /** A task running longer than this is retried or failed. */
  readonly execTimeoutMs: number
  /** A task whose progress has not moved for this long is retried or failed. */
  readonly stallTimeoutMs: number
  /** Finished tasks, their results and unreferenced files are purged after this. */
  readonly retentionMs: number
  /** Assets (voices, avatars) are kept this long after their upload. */
  readonly assetTtlMs: number
  readonly maxAttempts: number
  readonly jsonBodyLimit: string
  readonly headersTimeoutMs: number
  readonly idleTimeoutMs: number
  /** Open HTTP connections per client address (WebSockets included). */
  readonly maxConnectionsPerIp: number
  /** Refused credentials from one address (10 minutes) before it must wait. */
  readonly loginFailuresBeforeWait: number
  /** Proxies whose X-Forwarded-For names the caller (caller-address.ts). */
  readonly trustedProxies: readonly string[]
  readonly uploadMaxBytes: number
  /** Largest result a GPU may hand over. */
  readonly resultMaxBytes: number
  /** Uploads and submits are refused with DISK_FULL while the data disk has less free space. */
  readonly diskMinFreeBytes: number
  /** Power on demand (gateway/power/). */
  readonly power: PowerSettings
  readonly webhooks: WebhookConfig
}

export function gatewayConfigFromEnv(
  source: Readonly<Record<string, string | undefined>>,
): GatewayConfig & { logLevel: string } {
  const e = parseEnv('gateway', GatewayEnv, source)
  const tls =
    e.BROKER_TLS_CERT !== undefined && e.BROKER_TLS_KEY !== undefined
      ? { certPath: e.BROKER_TLS_CERT, keyPath: e.BROKER_TLS_KEY, port: e.BROKER_TLS_PORT }
      : null
  return Object.freeze({
    host: e.GATEWAY_HOST,
    port: e.GATEWAY_PORT,
    dataDir: e.DATA_DIR,
    mqttUrl: e.MQTT_URL ?? null,
    topicRoot: e.MQTT_TOPIC_ROOT,
    mqttClientId: e.GATEWAY_MQTT_CLIENT_ID,
    broker: Object.freeze({
      host: e.BROKER_HOST,
      port: e.BROKER_PORT,
      wsPort: e.BROKER_WS_PORT === 'off' ? null : e.BROKER_WS_PORT,
      persistencePath: e.BROKER_PERSISTENCE === 'memory' ? null : join(e.DATA_DIR, 'broker.sqlite'),
      tls,
      limits: Object.freeze({
        maxConnectionsPerIp: e.MQTT_MAX_CONNECTIONS_PER_IP,
        connectTimeoutMs: e.MQTT_CONNECT_TIMEOUT_MS,
        maxOutgoingBytes: e.MQTT_MAX_OUTGOING_BYTES,
      }),
      sysIntervalMs: e.BROKER_SYS_INTERVAL_MS,
    }),
    credentials: loadCredentials(source),
    mqttAllowAnonymous: e.MQTT_ALLOW_ANONYMOUS,
    mqttMaxPayloadBytes: e.MQTT_MAX_PAYLOAD_BYTES,
    apiSecret: e.API_SECRET ?? null,
    adminToken: e.ADMIN_TOKEN ?? null,
    metricsToken: e.METRICS_TOKEN ?? null,
    rateLimits: Object.freeze({
      submitsPerMinute: e.RATE_LIMIT_SUBMITS_PER_MIN,
      uploadsPerMinute: e.RATE_LIMIT_UPLOADS_PER_MIN,
    }),
    taskEvents: Object.freeze({
      maxPerCaller: e.TASK_EVENTS_MAX_PER_CALLER,
      heartbeatMs: e.TASK_EVENTS_HEARTBEAT_MS,
    }),
    gpuIds: Object.freeze([...e.GPU_IDS]),
    bootEstimateS: e.GPU_BOOT_ESTIMATE_S,
    runEstimateS: e.TASK_RUN_ESTIMATE_S,
    waitingStatus: e.WAITING_STATUS,
    waitingTexts: Object.freeze({
      offline: e.WAITING_TEXT_OFFLINE,
      starting: e.WAITING_TEXT_STARTING,
      queued: e.WAITING_TEXT_QUEUED,
    }),
    queueTtlMs: e.QUEUE_TTL_MS,
    execTimeoutMs: e.EXEC_TIMEOUT_MS,
    stallTimeoutMs: e.STALL_TIMEOUT_MS,
    retentionMs: e.RETENTION_MS,
    assetTtlMs: e.ASSET_TTL_MS,
    maxAttempts: e.MAX_ATTEMPTS,
    jsonBodyLimit: e.JSON_BODY_LIMIT,
    headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
    idleTimeoutMs: e.HTTP_IDLE_TIMEOUT_MS,
    maxConnectionsPerIp: e.HTTP_MAX_CONNECTIONS_PER_IP,
    loginFailuresBeforeWait: e.HTTP_LOGIN_FAILURES_BEFORE_WAIT,
    trustedProxies: Object.freeze([...e.HTTP_TRUSTED_PROXIES]),
    uploadMaxBytes: e.UPLOAD_MAX_BYTES,
    resultMaxBytes: e.RESULT_MAX_BYTES ?? e.UPLOAD_MAX_BYTES,
    diskMinFreeBytes: e.DISK_MIN_FREE_BYTES,
    power: powerSettings(e),
    webhooks: webhookConfig(e),
    logLevel: e.LOG_LEVEL,
  })
}

/**
 * Defaults for tests, the demo and embedding: every port 0, no TLS, anonymous MQTT allowed and the
 * user API open (callers that test security pass credentials); everything else as in production.
 */
export function gatewayTestConfig(
  dataDir: string,
  overrides: Partial<GatewayConfig> = {},
): GatewayConfig {
  return Object.freeze({
    host: '127.0.0.1',
    port: 0,
    dataDir,
    mqttUrl: null,
    topicRoot: DEFAULT_TOPIC_ROOT,
    mqttClientId: 'gpu-relay-gateway',
    broker: {
      host: '127.0.0.1',
      port: 0,
      wsPort: null,
      persistencePath: join(dataDir, 'broker.sqlite'),
      tls: null,
    },
    credentials: { gateway: null, admin: null, gpus: {} },
    mqttAllowAnonymous: true,
    mqttMaxPayloadBytes: 256 * 1024,
    apiSecret: null,
    adminToken: null,
    metricsToken: null,
    rateLimits: { submitsPerMinute: 10_000, uploadsPerMinute: 10_000 },
    taskEvents: { maxPerCaller: 8, heartbeatMs: 5_000 },
    gpuIds: ['gpu-1'],
    bootEstimateS: 120,
    runEstimateS: 120,
    waitingStatus: 'processing',
    waitingTexts: DEFAULT_WAITING_TEXTS,
    queueTtlMs: 24 * 60 * 60 * 1000,
    execTimeoutMs: 30 * 60 * 1000,
    stallTimeoutMs: 10 * 60 * 1000,
    retentionMs: 7 * 24 * 60 * 60 * 1000,
    assetTtlMs: 30 * 24 * 60 * 60 * 1000,
    maxAttempts: 3,
    jsonBodyLimit: '1mb',
    headersTimeoutMs: 10_000,
    idleTimeoutMs: 30_000,
    maxConnectionsPerIp: 64,
    loginFailuresBeforeWait: 5,
    trustedProxies: [],
    uploadMaxBytes: 2 * 1024 * 1024 * 1024,
    resultMaxBytes: overrides.uploadMaxBytes ?? 2 * 1024 * 1024 * 1024,
    // Test folders live on whatever disk the machine has: only full-disk tests set a minimum.
    diskMinFreeBytes: 0,
    power: POWER_DEFAULTS,
    webhooks: DEFAULT_WEBHOOK_CONFIG,
    ...overrides,
  })
}
