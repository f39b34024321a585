import { z } from 'zod'
import { env, parseEnv } from '../lib/config.js'
import type { BrokerConfig } from './broker.js'

/** Environment of the stand-alone broker (`npm run broker`). The embedded one reads the gateway's. */
export const BrokerEnv = z.object({
  BROKER_HOST: env.str('0.0.0.0'),
  BROKER_PORT: env.port(1883),
  BROKER_WS_PORT: z
    .union([z.literal('off'), z.coerce.number().int().min(0).max(65535)])
    .default(8083),
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
    logLevel: e.LOG_LEVEL,
  })
}
