/**
 * A faithful fake of the GPU machine's `run_server` Flask service (DESIGN §8), for tests and the
 * demo: the same endpoints and shapes, one job at a time in FIFO order, tasks kept only in memory
 * (a restart answers 404 for old ids) while the md5 file pool on disk survives, and the real
 * failure modes on demand (`failNext`: bad input such as "未检测到人脸"; `hangNext`: a frozen job).
 */
import { createServer, type Server } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from 'pino'
import { silentLogger } from '../../lib/logger.js'
import type { GpuSubmitRequest, UploadFileData } from '../../protocol/index.js'
import { createFakeRunServerApp } from './run-server-app.js'
import { FakeFilePool } from './run-server-files.js'
import { FakeJobQueue } from './run-server-jobs.js'
import type { JobFault } from './run-server-progress.js'
import { DEFAULT_RESULT_SIZE } from './result-bytes.js'

export interface FakeRunServerOptions {
  /** The md5 file pool on disk; created if missing; survives `restart()`. */
  readonly dir: string
  readonly host?: string
  /** 0 (default): any free port, kept across `restart()`. */
  readonly port?: number
  /** How long one job runs (default 3000 ms). */
  readonly durationMs?: number
  /** Bytes of each result video (default 64 KiB). */
  readonly resultSize?: number
  /** Monotonic milliseconds (default `performance.now`); tests may drive it by hand. */
  readonly clock?: () => number
  readonly log?: Logger
}

export interface FakeSubmission {
  readonly taskId: string
  readonly audioHash: string
  readonly videoHash: string
  /** Wall-clock ms. */
  readonly at: number
}

export interface FakeRunServerStats {
  /** Every accepted submit, in order (across restarts). */
  readonly submissions: readonly FakeSubmission[]
  /** Every stored upload, under its real md5. */
  readonly uploads: readonly { readonly hash: string; readonly size: number }[]
  /** Task ids of jobs that ended (done or error), in the order they ended. */
  readonly completed: readonly string[]
  /** The most jobs ever running at once: 1 for a faithful GPU service. */
  readonly maxConcurrent: number
  /** Task ids someone asked about (progress or download) after submitting them. */
  readonly asked: ReadonlySet<string>
  /** Task ids whose result was downloaded. */
  readonly downloaded: ReadonlySet<string>
  /** Task ids a restart forgot before their result was downloaded: work lost with the service. */
  readonly forgotten: readonly string[]
}

export interface FakeRunServer {
  readonly url: string
  readonly port: number
  readonly stats: FakeRunServerStats
  /** The next job to start fails with status `error` and this `error_msg`. */
  failNext(message: string): void
  /** The next job to start freezes at this progress, status `synthesizing`, for ever. */
  hangNext(atProgress?: number): void
  /** Close and listen again on the same port, forgetting every task; files stay. */
  restart(): Promise<void>
  close(): Promise<void>
}

const RESTART_DOWN_MS = 20

interface MutableStats {
  submissions: FakeSubmission[]
  uploads: { hash: string; size: number }[]
  completed: string[]
  maxConcurrent: number
  asked: Set<string>
  downloaded: Set<string>
  forgotten: string[]
}

function checkOptions(options: FakeRunServerOptions): void {
  const { port = 0, durationMs = 3000, resultSize = DEFAULT_RESULT_SIZE } = options
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`bad port: ${port}`)
  if (!(durationMs > 0) || !Number.isFinite(durationMs)) {
    throw new RangeError(`bad durationMs: ${durationMs}`)
  }
  if (!Number.isSafeInteger(resultSize) || resultSize < 0) {
    throw new RangeError(`bad resultSize: ${resultSize}`)
  }
  if (options.dir === '') throw new RangeError('dir is required')
}

export async function startFakeRunServer(options: FakeRunServerOptions): Promise<FakeRunServer> {
  checkOptions(options)
  const host = options.host ?? '127.0.0.1'
  const durationMs = options.durationMs ?? 3000
  const resultSize = options.resultSize ?? DEFAULT_RESULT_SIZE
  const clock = options.clock ?? (() => performance.now())
  const log = options.log ?? silentLogger()
  const pool = await FakeFilePool.open(options.dir)
  const stats: MutableStats = {
    submissions: [],
    uploads: [],
    completed: [],
    maxConcurrent: 0,
    asked: new Set(),
    downloaded: new Set(),
    forgotten: [],
  }
  let sinceRestart: string[] = []
  const faults: JobFault[] = []
  let running = 0

  const newQueue = (): FakeJobQueue =>
    new FakeJobQueue({
      durationMs,
      clock,
      takeFault: () => faults.shift() ?? null,
      onStart: () => {
        running += 1
        stats.maxConcurrent = Math.max(stats.maxConcurrent, running)
      },
      onEnd: (job) => {
        running -= 1
        stats.completed.push(job.taskId)
      },
    })

  const serve = async (port: number): Promise<{ server: Server; jobs: FakeJobQueue }> => {
    const jobs = newQueue()
    const app = createFakeRunServerApp({
      pool,
      jobs,
      durationMs,
      resultSize,
      log,
      onUpload: (upload: UploadFileData) =>
        stats.uploads.push({ hash: upload.hash, size: upload.size }),
      onSubmit: (taskId: string, body: GpuSubmitRequest) => {
        sinceRestart.push(taskId)
        stats.submissions.push({
          taskId,
          audioHash: body.audio_hash,
          videoHash: body.video_hash,
          at: Date.now(),
        })
      },
      onAsk: (taskId, what) => {
        stats.asked.add(taskId)
        if (what === 'download') stats.downloaded.add(taskId)
      },
    })
    const server = createServer(app)
    await listen(server, host, port)
    return { server, jobs }
  }

  let current = await serve(options.port ?? 0)
  const address = current.server.address()
  if (address === null || typeof address === 'string') throw new Error('fake run_server: no port')
  const port = address.port
  const urlHost =
    host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  let closing: Promise<void> | undefined

  const stop = async (): Promise<void> => {
    current.jobs.close()
    running = 0
    await closeServer(current.server)
  }

  return {
    url: `http://${urlHost}:${port}`,
    port,
    stats,
    failNext(message: string): void {
      faults.push({ kind: 'fail', message })
    },
    hangNext(atProgress = 20): void {
      if (!(atProgress >= 0 && atProgress < 100))
        throw new RangeError(`bad progress: ${atProgress}`)
      faults.push({ kind: 'hang', atProgress })
    },
    async restart(): Promise<void> {
      if (closing) throw new Error('fake run_server is closed')
      await stop()
      stats.forgotten.push(...sinceRestart.filter((id) => !stats.downloaded.has(id)))
      sinceRestart = []
      // The down time of a restart: clients see their connections close before the port answers
      // again (an instant re-listen would race with keep-alive sockets still thought alive).
      await delay(RESTART_DOWN_MS)
      current = await serve(port)
    },
    close(): Promise<void> {
      closing ??= stop()
      return closing
    },
  }
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => {
      if (err) reject(err)
      else resolve()
    })
    // Keep-alive and in-flight connections die with the process, as with a real restart.
    server.closeAllConnections()
  })
}
