import { z } from 'zod'
import { env, parseEnv } from '../lib/config.js'
import { AdapterName, DEFAULT_ADAPTER } from './adapters/registry.js'
import { resolveServiceSecret } from './service-secret.js'
import { DEFAULT_TOPIC_ROOT, GpuId } from '../protocol/index.js'

/** Environment of the GPU bridge (documented in .env.example and the README). */
export const BridgeEnv = z.object({
  BRIDGE_GPU_ID: GpuId.default('gpu-1'),
  /** This GPU's secret (the gateway's GPU_SECRETS entry): MQTT password and file-endpoint token. */
  BRIDGE_SECRET: z.string().min(8).optional(),
  MQTT_URL: z.url({ protocol: /^(mqtts?|wss?|tcp)$/ }).default('mqtt://127.0.0.1:1883'),
  MQTT_TOPIC_ROOT: env.str(DEFAULT_TOPIC_ROOT),
  MQTT_KEEPALIVE_S: env.int(15, 1),
  GATEWAY_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8383'),
  GPU_SERVICE_URL: z.url({ protocol: /^https?$/ }).default('http://127.0.0.1:8383'),
  /** run_server's `api_secret` (its config.ini), sent as `Authorization: Bearer`. */
  GPU_SERVICE_SECRET: z.string().min(1).optional(),
  /** Or the path to run_server's config/config.ini, to read `api_secret` from. */
  GPU_SERVICE_CONFIG: z.string().min(1).optional(),
  /** One of the adapters in adapters/registry.ts. */
  BRIDGE_ADAPTER: AdapterName.default(DEFAULT_ADAPTER),
  BRIDGE_DATA_DIR: env.str('./data/bridge'),
  BRIDGE_CAPACITY: env.int(1, 1),
  BRIDGE_HEARTBEAT_MS: env.ms(15_000),
  BRIDGE_POLL_MS: env.ms(1_000),
  BRIDGE_PROGRESS_INTERVAL_MS: env.ms(500),
  BRIDGE_CLAIM_RETRY_MS: env.ms(10_000),
  BRIDGE_RESEND_MS: env.ms(10_000),
  BRIDGE_SERVICE_DOWN_MS: env.ms(120_000),
  BRIDGE_READY_POLL_MS: env.ms(3_000),
  LOG_LEVEL: env.logLevel(),
})

export interface BridgeConfig {
  readonly gpuId: string
  /** null: connect without credentials (a broker that allows anonymous, development only). */
  readonly secret: string | null
  readonly mqttUrl: string
  readonly topicRoot: string
  readonly keepaliveS: number
  readonly gatewayUrl: string
  readonly serviceUrl: string
  /** run_server's api_secret; null: it has none. */
  readonly serviceSecret: string | null
  /** The adapter's name in adapters/registry.ts. */
  readonly adapter: string
  readonly dataDir: string
  /** Tasks run at once (the GPU service itself runs one at a time). */
  readonly capacity: number
  readonly heartbeatMs: number
  /** How often the GPU service is asked for progress. */
  readonly pollMs: number
  /** Progress events at most this often (the last one is always sent). */
  readonly progressIntervalMs: number
  /** A claim not answered within this is sent again. */
  readonly claimRetryMs: number
  /** A done/error event not acknowledged within this is sent again. */
  readonly resendMs: number
  /** The GPU service unreachable this long during a job → the attempt fails (retryable). */
  readonly serviceDownMs: number
  /** How often the GPU service's readiness (health) is checked. */
  readonly readyPollMs: number
}

export function bridgeConfigFromEnv(
  source: Readonly<Record<string, string | undefined>>,
): BridgeConfig & { logLevel: string } {
  const e = parseEnv('gpu-bridge', BridgeEnv, source)
  return Object.freeze({
    gpuId: e.BRIDGE_GPU_ID,
    secret: e.BRIDGE_SECRET ?? null,
    mqttUrl: e.MQTT_URL,
    topicRoot: e.MQTT_TOPIC_ROOT,
    keepaliveS: e.MQTT_KEEPALIVE_S,
    gatewayUrl: e.GATEWAY_URL,
    serviceUrl: e.GPU_SERVICE_URL,
    serviceSecret: resolveServiceSecret(e.GPU_SERVICE_SECRET, e.GPU_SERVICE_CONFIG),
    adapter: e.BRIDGE_ADAPTER,
    dataDir: e.BRIDGE_DATA_DIR,
    capacity: e.BRIDGE_CAPACITY,
    heartbeatMs: e.BRIDGE_HEARTBEAT_MS,
    pollMs: e.BRIDGE_POLL_MS,
    progressIntervalMs: e.BRIDGE_PROGRESS_INTERVAL_MS,
    claimRetryMs: e.BRIDGE_CLAIM_RETRY_MS,
    resendMs: e.BRIDGE_RESEND_MS,
    serviceDownMs: e.BRIDGE_SERVICE_DOWN_MS,
    readyPollMs: e.BRIDGE_READY_POLL_MS,
    logLevel: e.LOG_LEVEL,
  })
}

/** Test defaults: fast clocks, everything else as in production. */
export function bridgeTestConfig(
  base: Pick<BridgeConfig, 'gpuId' | 'mqttUrl' | 'gatewayUrl' | 'serviceUrl' | 'dataDir'> &
    Partial<Pick<BridgeConfig, 'secret'>>,
  overrides: Partial<BridgeConfig> = {},
): BridgeConfig {
  return Object.freeze({
    secret: null,
    serviceSecret: null,
    topicRoot: DEFAULT_TOPIC_ROOT,
    keepaliveS: 5,
    adapter: DEFAULT_ADAPTER,
    capacity: 1,
    heartbeatMs: 1_000,
    pollMs: 100,
    progressIntervalMs: 200,
    claimRetryMs: 2_000,
    resendMs: 1_000,
    serviceDownMs: 10_000,
    readyPollMs: 100,
    ...base,
    ...overrides,
  })
}
