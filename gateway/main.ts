/**
 * `npm start`: the relay in one process — gateway HTTP API, SQLite, and (unless MQTT_URL is set)
 * the embedded Aedes broker. This is the composition root, the one place allowed to start broker/.
 */
import { startBroker } from '../broker/broker.js'
import { closeOnSignals, runMain } from '../lib/lifecycle.js'
import { createLogger } from '../lib/logger.js'
import { gatewayConfigFromEnv } from './config.js'
import { startGateway } from './gateway.js'

runMain('gateway', async () => {
  const config = gatewayConfigFromEnv(process.env)
  const log = createLogger(config.logLevel, 'gpu-relay')
  const gateway = await startGateway(config, { log, startBroker })
  closeOnSignals(gateway, log)
})
