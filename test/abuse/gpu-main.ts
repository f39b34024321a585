/**
 * The fake run_server in its own process for the abuse suite, with what the suite counts: its
 * `stats` (every job it ran) as JSON on a second port, `GET /stats`. FAKE_GPU_PORT,
 * FAKE_GPU_STATS_PORT, FAKE_GPU_DIR, FAKE_GPU_DURATION_MS, FAKE_GPU_RESULT_SIZE.
 */
import { createServer } from 'node:http'
import { z } from 'zod'
import { env, parseEnv } from '../../lib/config.js'
import { runMain } from '../../lib/lifecycle.js'
import { createLogger } from '../../lib/logger.js'
import { startFakeRunServer } from '../fakes/run-server.js'

const GpuEnv = z.object({
  FAKE_GPU_PORT: env.port(0),
  FAKE_GPU_STATS_PORT: env.port(0),
  FAKE_GPU_DIR: env.str('./data/abuse-gpu'),
  FAKE_GPU_DURATION_MS: env.ms(3000),
  FAKE_GPU_RESULT_SIZE: env.int(4096, 1),
  LOG_LEVEL: env.logLevel(),
})

runMain('abuse-gpu', async () => {
  const config = parseEnv('abuse-gpu', GpuEnv, process.env)
  const log = createLogger(config.LOG_LEVEL, 'abuse-gpu')
  const gpu = await startFakeRunServer({
    port: config.FAKE_GPU_PORT,
    dir: config.FAKE_GPU_DIR,
    durationMs: config.FAKE_GPU_DURATION_MS,
    resultSize: config.FAKE_GPU_RESULT_SIZE,
    log,
  })
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
  await new Promise<void>((resolve) =>
    stats.listen(config.FAKE_GPU_STATS_PORT, '127.0.0.1', resolve),
  )
  const address = stats.address()
  const statsPort = typeof address === 'object' && address !== null ? address.port : 0
  const stop = (): void => {
    stats.close()
    void gpu.close().finally(() => process.exit(0))
  }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
  log.info({ url: gpu.url, statsPort }, 'abuse gpu listening')
})
