/**
 * `npm run fake-gpu`: the fake run_server on its own, for the demo, manual tries and the abuse
 * suite. FAKE_GPU_PORT (8384), FAKE_GPU_HOST (127.0.0.1), FAKE_GPU_DIR (./data/fake-gpu),
 * FAKE_GPU_DURATION_MS (5000), FAKE_GPU_LOAD_MS (0: the port stays closed this long, as while the
 * real one loads its models), FAKE_GPU_API_SECRET (empty: no auth, as config.ini `api_secret`),
 * FAKE_GPU_RESULT_SIZE (bytes of each result; the fake's default when unset),
 * FAKE_GPU_STATS_PORT (off: else its `stats`, every job it ran, as JSON at `GET /stats` on that
 * port, for tests that count runs from outside), LOG_LEVEL (info).
 */
import { createServer } from 'node:http'
import { z } from 'zod'
import { env, parseEnv } from '../../lib/config.js'
import { closeOnSignals, runMain } from '../../lib/lifecycle.js'
import { createLogger } from '../../lib/logger.js'
import { startFakeRunServer, type FakeRunServer } from './run-server.js'

const FakeGpuEnv = z.object({
  FAKE_GPU_PORT: env.port(8384),
  FAKE_GPU_HOST: env.str('127.0.0.1'),
  FAKE_GPU_DIR: env.str('./data/fake-gpu'),
  FAKE_GPU_DURATION_MS: env.ms(5000),
  FAKE_GPU_LOAD_MS: env.int(0),
  FAKE_GPU_API_SECRET: z.string().default(''),
  FAKE_GPU_RESULT_SIZE: z.coerce.number().int().min(1).optional(),
  FAKE_GPU_STATS_PORT: z
    .union([z.literal('off'), z.coerce.number().int().min(0).max(65535)])
    .default('off'),
  LOG_LEVEL: env.logLevel(),
})

/** The fake's `stats` as JSON on `port` (127.0.0.1); resolves with the port it listens on. */
async function serveStats(
  gpu: FakeRunServer,
  port: number,
): Promise<{ port: number; close(): void }> {
  const stats = createServer((_req, res) => {
    const s = gpu.stats
    res.setHeader('content-type', 'application/json')
    res.end(
      JSON.stringify({
        submissions: s.submissions,
        asked: [...s.asked],
        forgotten: s.forgotten,
        completed: s.completed,
        maxConcurrent: s.maxConcurrent,
      }),
    )
  })
  await new Promise<void>((resolve) => stats.listen(port, '127.0.0.1', resolve))
  const address = stats.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: () => stats.close(),
  }
}

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
    ...(config.FAKE_GPU_RESULT_SIZE === undefined
      ? {}
      : { resultSize: config.FAKE_GPU_RESULT_SIZE }),
    log,
  })
  const stats =
    config.FAKE_GPU_STATS_PORT === 'off'
      ? null
      : await serveStats(server, config.FAKE_GPU_STATS_PORT)
  closeOnSignals(
    {
      close: () => {
        stats?.close()
        return server.close()
      },
    },
    log,
  )
  const auth = config.FAKE_GPU_API_SECRET.trim() !== ''
  log.info({ url: server.url, dir: config.FAKE_GPU_DIR, auth }, 'fake run_server loading')
  await server.ready
  log.info({ url: server.url, statsPort: stats?.port ?? null }, 'fake run_server listening')
  process.stdout.write(`fake run_server (HeyGem GPU service) listening on ${server.url}\n`)
})
