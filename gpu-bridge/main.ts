/** `npm run bridge` on the GPU machine: connects the local GPU service to the relay. */
import { closeOnSignals, runMain } from '../lib/lifecycle.js'
import { createLogger } from '../lib/logger.js'
import { startBridge } from './bridge.js'
import { bridgeConfigFromEnv } from './config.js'

runMain('gpu-bridge', async () => {
  const config = bridgeConfigFromEnv(process.env)
  const log = createLogger(config.logLevel, 'gpu-relay-bridge')
  const bridge = await startBridge(config, { log })
  closeOnSignals(bridge, log)
})
