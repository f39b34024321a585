import { join } from 'node:path'
import { z } from 'zod'
import { env, parseEnv } from '../lib/config.js'
import { loadCredentials } from '../lib/credentials.js'
import { DEFAULT_TOPIC_ROOT } from '../protocol/index.js'
import { DEFAULT_BROKER_LIMITS, type BrokerConfig } from './broker.js'

/** Environment of the stand-alone broker (`npm run broker`). The embedded one reads the gateway's. */
export const BrokerEnv = z.object({
  BROKER_HOST: env.str('0.0.0.0'),
  BROKER_PORT: env.port(1883),
  BROKER_WS_PORT: env.portOrOff(8083),
  /** sqlite: sessions and queues in BROKER_DATA_DIR/broker.sqlite; memory: lost on restart. */
  BROKER_PERSISTENCE: z.enum(['sqlite', 'memory']).default('sqlite'),
  BROKER_DATA_DIR: env.str('./data/broker'),
  BROKER_HEARTBEAT_MS: env.ms(60_000),
  /** How often the `$SYS/broker/…` figures are published (MQTT Explorer). */
  BROKER_SYS_INTERVAL_MS: env.ms(10_000),
  BROKER_TLS_CERT: z.string().min(1).optional(),
  BROKER_TLS_KEY: z.string().min(1).optional(),
  BROKER_TLS_PORT: env.port(8883),
  MQTT_TOPIC_ROOT: env.str(DEFAULT_TOPIC_ROOT),
  MQTT_ALLOW_ANONYMOUS: env.bool(false),
  MQTT_MAX_PAYLOAD_BYTES: env.int(256 * 1024, 1024),
  /** Open MQTT connections per client address (TCP, TLS and WebSocket together). */
  MQTT_MAX_CONNECTIONS_PER_IP: env.int(DEFAULT_BROKER_LIMITS.maxConnectionsPerIp, 1),
  /** A connection that has not completed its CONNECT this long after accept is closed. */
  MQTT_CONNECT_TIMEOUT_MS: env.ms(DEFAULT_BROKER_LIMITS.connectTimeoutMs),
  /** A client whose unwritten outgoing bytes exceed this is disconnected (its session stays). */
  MQTT_MAX_OUTGOING_BYTES: env.int(DEFAULT_BROKER_LIMITS.maxOutgoingBytes, 64 * 1024),
  /** The gateway's client id, reserved for the gateway login. */
  GATEWAY_MQTT_CLIENT_ID: env.str('gpu-relay-gateway'),
  LOG_LEVEL: env.logLevel(),
})

export function brokerConfigFromEnv(
  source: Readonly<Record<string, string | undefined>>,
): BrokerConfig & { logLevel: string } {
  const e = parseEnv('broker', BrokerEnv, source)
  return Object.freeze({
    host: e.BROKER_HOST,
    port: e.BROKER_PORT,
    wsPort: e.BROKER_WS_PORT === 'off' ? null : e.BROKER_WS_PORT,
    persistencePath:
      e.BROKER_PERSISTENCE === 'memory' ? null : join(e.BROKER_DATA_DIR, 'broker.sqlite'),
    heartbeatMs: e.BROKER_HEARTBEAT_MS,
    sysIntervalMs: e.BROKER_SYS_INTERVAL_MS,
    tls:
      e.BROKER_TLS_CERT !== undefined && e.BROKER_TLS_KEY !== undefined
        ? { certPath: e.BROKER_TLS_CERT, keyPath: e.BROKER_TLS_KEY, port: e.BROKER_TLS_PORT }
        : null,
    auth: {
      credentials: loadCredentials(source),
      allowAnonymous: e.MQTT_ALLOW_ANONYMOUS,
      topicRoot: e.MQTT_TOPIC_ROOT,
      maxPayloadBytes: e.MQTT_MAX_PAYLOAD_BYTES,
      gatewayClientId: e.GATEWAY_MQTT_CLIENT_ID,
    },
    limits: Object.freeze({
      maxConnectionsPerIp: e.MQTT_MAX_CONNECTIONS_PER_IP,
      connectTimeoutMs: e.MQTT_CONNECT_TIMEOUT_MS,
      maxOutgoingBytes: e.MQTT_MAX_OUTGOING_BYTES,
    }),
    logLevel: e.LOG_LEVEL,
  })
}
