/**
 * The real parts of a relay for a test, each on port 0 with cleanup registered right after start:
 * gateway (embedded Aedes, SQLite in a temp folder), the fake run_server GPU service, and bridges.
 */
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { gatewayTestConfig, type GatewayConfig } from '../../gateway/config.js'
import { startGateway, type GatewayHandle } from '../../gateway/gateway.js'
import { bridgeTestConfig, type BridgeConfig } from '../../gpu-bridge/config.js'
import { startBridge, type BridgeHandle } from '../../gpu-bridge/bridge.js'
import { silentLogger } from '../../lib/logger.js'
import { startFakeRunServer, type FakeRunServer } from '../fakes/run-server.js'

export const log = silentLogger()

export async function startTestGateway(
  dir: string,
  overrides: Partial<GatewayConfig> = {},
): Promise<GatewayHandle> {
  const gateway = await startGateway(gatewayTestConfig(join(dir, 'gateway'), overrides), {
    log,
    startBroker,
  })
  onTestFinished(() => gateway.close())
  return gateway
}

export async function startTestGpu(dir: string, durationMs = 400): Promise<FakeRunServer> {
  const gpu = await startFakeRunServer({
    dir: join(dir, 'gpu-service'),
    durationMs,
    resultSize: 32 * 1024,
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
      },
      overrides,
    ),
    { log },
  )
  onTestFinished(() => bridge.close())
  return bridge
}
