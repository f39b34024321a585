/**
 * `npm run fake-gpu`: the fake run_server on its own, for the demo and manual tries.
 * FAKE_GPU_PORT (8384), FAKE_GPU_HOST (127.0.0.1), FAKE_GPU_DIR (./data/fake-gpu),
 * FAKE_GPU_DURATION_MS (5000), LOG_LEVEL (info).
 */
import { z } from 'zod'
import { env, parseEnv } from '../../lib/config.js'
import { closeOnSignals, runMain } from '../../lib/lifecycle.js'
import { createLogger } from '../../lib/logger.js'
import { startFakeRunServer } from './run-server.js'

const FakeGpuEnv = z.object({
  FAKE_GPU_PORT: env.port(8384),
  FAKE_GPU_HOST: env.str('127.0.0.1'),
  FAKE_GPU_DIR: env.str('./data/fake-gpu'),
  FAKE_GPU_DURATION_MS: env.ms(5000),
  LOG_LEVEL: env.logLevel(),
})

runMain('fake-gpu', async () => {
  const config = parseEnv('fake-gpu', FakeGpuEnv, process.env)
  const log = createLogger(config.LOG_LEVEL, 'fake-gpu')
  const server = await startFakeRunServer({
    host: config.FAKE_GPU_HOST,
    port: config.FAKE_GPU_PORT,
    dir: config.FAKE_GPU_DIR,
    durationMs: config.FAKE_GPU_DURATION_MS,
    log,
  })
  closeOnSignals(server, log)
  log.info({ url: server.url, dir: config.FAKE_GPU_DIR }, 'fake run_server listening')
  process.stdout.write(`fake run_server (HeyGem GPU service) listening on ${server.url}\n`)
})
