/**
 * `npm run fake-gpu`: the fake run_server on its own, for the demo and manual tries.
 * FAKE_GPU_PORT (8384), FAKE_GPU_HOST (127.0.0.1), FAKE_GPU_DIR (./data/fake-gpu),
 * FAKE_GPU_DURATION_MS (5000), FAKE_GPU_LOAD_MS (0: the port stays closed this long, as while the
 * real one loads its models), FAKE_GPU_API_SECRET (empty: no auth, as config.ini `api_secret`),
 * LOG_LEVEL (info).
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
  FAKE_GPU_LOAD_MS: env.int(0),
  FAKE_GPU_API_SECRET: z.string().default(''),
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
    loadMs: config.FAKE_GPU_LOAD_MS,
    apiSecret: config.FAKE_GPU_API_SECRET,
    log,
  })
  closeOnSignals(server, log)
  const auth = config.FAKE_GPU_API_SECRET.trim() !== ''
  log.info({ url: server.url, dir: config.FAKE_GPU_DIR, auth }, 'fake run_server loading')
  await server.ready
  log.info({ url: server.url }, 'fake run_server listening')
  process.stdout.write(`fake run_server (HeyGem GPU service) listening on ${server.url}\n`)
})
