/**
 * The real gateway alone in a process (so its RSS is its own), for bench/http.ts: test config
 * over `BENCH_DATA_DIR`, the PC secret `BENCH_API_SECRET`, no rate limits. Prints one JSON line
 * `{ "url": … }` once listening; SIGTERM closes it.
 */
import { startBroker } from '../broker/broker.js'
import { gatewayTestConfig } from '../gateway/config.js'
import { startGateway } from '../gateway/gateway.js'
import { silentLogger } from '../lib/logger.js'

const dataDir = process.env.BENCH_DATA_DIR ?? ''
if (dataDir === '') throw new Error('BENCH_DATA_DIR is required')
const config = gatewayTestConfig(dataDir, {
  // test/helpers/relay.ts TEST_CREDENTIALS (that module imports vitest, so not imported here).
  credentials: {
    gateway: 'test-gateway-secret',
    admin: 'test-admin-secret',
    gpus: { 'gpu-1': 'test-gpu-1-secret' },
  },
  mqttAllowAnonymous: false,
  apiSecret: process.env.BENCH_API_SECRET ?? null,
  rateLimits: { submitsPerMinute: 1_000_000_000, uploadsPerMinute: 1_000_000_000 },
  maxConnectionsPerIp: 1_000,
})
const gateway = await startGateway(config, { log: silentLogger(), startBroker })
process.stdout.write(`${JSON.stringify({ url: gateway.url })}\n`)
process.once('SIGTERM', () => {
  void gateway.close().finally(() => process.exit(0))
})
