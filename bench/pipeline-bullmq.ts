/**
 * The peer of the pipeline benches: BullMQ on a redis-server the bench starts on a free port with
 * no persistence, stopped at the end.
 */
import { spawn, spawnSync } from 'node:child_process'
import { Queue, Worker } from 'bullmq'
import { freePort } from '../test/helpers/free-port.js'

export interface BullPeer {
  /** Sequential queue.add → processor start latencies (ms), `count` jobs. */
  latencies(count: number): Promise<number[]>
  /** `count` no-op jobs queued first, then drained by `workers` workers: jobs/s. */
  drain(count: number, workers: number): Promise<number>
  close(): Promise<void>
}

/** Null when redis-server is not installed (bench/setup.sh installs it). */
export async function startBullPeer(): Promise<BullPeer | null> {
  if (spawnSync('redis-server', ['--version']).status !== 0) return null
  const port = await freePort()
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  )
  const ready = new Promise<void>((resolve, reject) => {
    let seen = ''
    redis.stdout.on('data', (chunk: Buffer) => {
      seen += chunk.toString()
      if (seen.includes('Ready to accept connections')) resolve()
    })
    redis.once('exit', (code) => {
      reject(new Error(`redis-server exited (${String(code)})`))
    })
  })
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null }
  const stopRedis = async (): Promise<void> => {
    if (redis.exitCode !== null) return
    const exited = new Promise<void>((resolve) => redis.once('exit', () => resolve()))
    redis.kill('SIGTERM')
    await exited
  }
  let n = 0
  const queue = async (): Promise<Queue> => {
    n += 1
    const q = new Queue(`bench-${String(n)}`, { connection })
    await q.waitUntilReady()
    return q
  }
  try {
    await ready
    const probe = await queue()
    await probe.close()
  } catch (err) {
    await stopRedis()
    throw err
  }
  return {
    async latencies(count) {
      const q = await queue()
      const out: number[] = []
      let started: (() => void) | null = null
      const worker = new Worker<{ t: number }>(
        q.name,
        (job) => {
          out.push(performance.now() - job.data.t)
          started?.()
          return Promise.resolve()
        },
        { connection },
      )
      await worker.waitUntilReady()
      try {
        for (let i = 0; i < count; i++) {
          const seen = new Promise<void>((resolve) => (started = resolve))
          await q.add('j', { t: performance.now() }, { removeOnComplete: true })
          await seen
        }
      } finally {
        await worker.close()
        await q.close()
      }
      return out
    },
    async drain(count, workers) {
      const q = await queue()
      await q.addBulk(
        Array.from({ length: count }, () => ({
          name: 'j',
          data: {},
          opts: { removeOnComplete: true },
        })),
      )
      let done = 0
      let finish: () => void = () => undefined
      const all = new Promise<void>((resolve) => (finish = resolve))
      const t0 = performance.now()
      const ws = Array.from(
        { length: workers },
        () =>
          new Worker(
            q.name,
            () => {
              done += 1
              if (done === count) finish()
              return Promise.resolve()
            },
            { connection },
          ),
      )
      try {
        await all
        return (count / (performance.now() - t0)) * 1000
      } finally {
        for (const w of ws) await w.close()
        await q.close()
      }
    },
    async close() {
      await stopRedis()
    },
  }
}
