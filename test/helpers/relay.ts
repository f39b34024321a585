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

export async function startTestGateway(
  dir: string,
  overrides: Partial<GatewayConfig> = {},
  /** The gateway's wall clock (default Date.now). */
  now?: () => number,
): Promise<GatewayHandle> {
  const config = gatewayTestConfig(join(dir, 'gateway'), {
    credentials: TEST_CREDENTIALS,
    mqttAllowAnonymous: false,
    ...overrides,
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
  gateway: { url: string; mqttUrl: string },
  gpu: { url: string },
  overrides: Partial<BridgeConfig> = {},
): Promise<BridgeHandle> {
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
