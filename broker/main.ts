/** `npm run broker`: the Aedes broker alone, for gateways started with MQTT_URL pointing here. */
import { closeOnSignals, runMain } from '../lib/lifecycle.js'
import { createLogger } from '../lib/logger.js'
import { startBroker } from './broker.js'
import { brokerConfigFromEnv } from './config.js'

runMain('broker', async () => {
  const config = brokerConfigFromEnv(process.env)
  const log = createLogger(config.logLevel, 'gpu-relay-broker')
  const broker = await startBroker(config, { log })
  closeOnSignals(broker, log)
})
