/**
 * The real parts of a relay for a test, each on port 0 with cleanup registered right after start:
 * gateway (embedded Aedes, SQLite in a temp folder), the fake run_server GPU service, and bridges.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { gatewayTestConfig, type GatewayConfig } from '../../gateway/config.js'
import { startGateway, type GatewayHandle } from '../../gateway/gateway.js'
import { bridgeTestConfig, type BridgeConfig } from '../../gpu-bridge/config.js'
import { startBridge, type BridgeHandle } from '../../gpu-bridge/bridge.js'
import type { Credentials } from '../../lib/credentials.js'
import { silentLogger } from '../../lib/logger.js'
import { endClient } from '../../lib/mqtt.js'
import { startTestMosquitto, type TestMosquitto } from './mosquitto.js'
import {
  startFakeRunServer,
  type FakeRunServer,
  type FakeRunServerOptions,
} from '../fakes/run-server.js'

export const log = silentLogger()

/** The logins every test relay uses: MQTT without credentials is refused, as in production. */
export const TEST_SECRETS = {
  gateway: 'test-gateway-secret',
  admin: 'test-admin-secret',
  gpu: 'test-gpu-1-secret',
} as const
export const TEST_CREDENTIALS: Credentials = {
  gateway: TEST_SECRETS.gateway,
  admin: TEST_SECRETS.admin,
  gpus: { 'gpu-1': TEST_SECRETS.gpu },
}

/**
 * The broker the relay's tests run against: the embedded one, or with
 * `RELAY_TEST_BROKER=mosquitto` (the `mosquitto` vitest project) a real Mosquitto per test folder.
 */
export const TEST_BROKER: 'embedded' | 'mosquitto' =
  process.env.RELAY_TEST_BROKER === 'mosquitto' ? 'mosquitto' : 'embedded'

/** One Mosquitto per test folder: a gateway restarted in the same folder finds the same broker. */
const mosquittos = new Map<string, Promise<TestMosquitto>>()

/** The Mosquitto of this test folder, started (with these logins) on first use. */
export function testMosquitto(
  dir: string,
  credentials: Credentials = TEST_CREDENTIALS,
): Promise<TestMosquitto> {
  let broker = mosquittos.get(dir)
  if (!broker) {
    broker = startTestMosquitto({ dir, credentials })
    mosquittos.set(dir, broker)
    onTestFinished(() => {
      mosquittos.delete(dir)
    })
  }
  return broker
}

/**
 * A broker that outlives gateways: the embedded one started alone (no auth), or under
 * `RELAY_TEST_BROKER=mosquitto` this folder's Mosquitto (with the test logins).
 */
export async function startTestBroker(dir: string): Promise<{ url: string }> {
  if (TEST_BROKER === 'mosquitto') return testMosquitto(dir)
  const broker = await startBroker(
    {
      host: '127.0.0.1',
      port: 0,
      wsPort: null,
      persistencePath: join(dir, 'broker.sqlite'),
      auth: null,
      tls: null,
    },
    { log },
  )
  onTestFinished(() => broker.close())
  return broker
}

export async function startTestGateway(
  dir: string,
  overrides: Partial<GatewayConfig> = {},
  /** The gateway's wall clock (default Date.now). */
  now?: () => number,
): Promise<GatewayHandle> {
  // Under RELAY_TEST_BROKER=mosquitto a gateway given no broker of its own uses this folder's.
  const external =
    TEST_BROKER === 'mosquitto' && overrides.mqttUrl === undefined
      ? { mqttUrl: (await testMosquitto(dir, overrides.credentials ?? TEST_CREDENTIALS)).url }
      : {}
  const config = gatewayTestConfig(join(dir, 'gateway'), {
    credentials: TEST_CREDENTIALS,
    mqttAllowAnonymous: false,
    ...overrides,
    ...external,
  })
  const gateway = await startGateway(config, { log, startBroker, ...(now ? { now } : {}) })
  onTestFinished(() => gateway.close())
  return gateway
}

/** An MQTT client logged in as the gateway (may publish anywhere under relay/) or the admin. */
export async function testMqttClient(url: string, role: 'gateway' | 'admin'): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, {
    clientId: `test-${role}-${randomUUID().slice(0, 8)}`,
    username: role,
    password: TEST_SECRETS[role],
  })
  onTestFinished(() => endClient(client))
  return client
}

export async function startTestGpu(
  dir: string,
  durationMs = 400,
  options: Partial<FakeRunServerOptions> = {},
): Promise<FakeRunServer> {
  const gpu = await startFakeRunServer({
    dir: join(dir, 'gpu-service'),
    durationMs,
    resultSize: 32 * 1024,
    ...options,
  })
  onTestFinished(() => gpu.close())
  return gpu
}

export async function startTestBridge(
  dir: string,
  to: { readonly gateway: { url: string; mqttUrl: string }; readonly gpu: { url: string } },
  overrides: Partial<BridgeConfig> = {},
): Promise<BridgeHandle> {
  const { gateway, gpu } = to
  const bridge = await startBridge(
    bridgeTestConfig(
      {
        gpuId: 'gpu-1',
        mqttUrl: gateway.mqttUrl,
        gatewayUrl: gateway.url,
        serviceUrl: gpu.url,
        dataDir: join(dir, 'bridge'),
        secret: TEST_SECRETS.gpu,
      },
      overrides,
    ),
    { log },
  )
  onTestFinished(() => bridge.close())
  return bridge
}
