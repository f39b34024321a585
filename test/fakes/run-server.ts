/**
 * A fake of the GPU machine's `run_server.py` that is the real one shape for shape
 * (docs/real-services.md §1), for tests and the demo: its endpoints and reply bodies, optional auth,
 * CORS, a port that stays closed while the models load, one job at a time, tasks kept only in
 * memory (a restart forgets them, 404 afterwards) while the files on disk stay, the audio+video
 * result cache, the TTL cleanup, and the real failure modes on demand (`failNext`: an engine error
 * such as "未检测到人脸"; `hangNext`: a frozen job). Its own types: nothing from protocol/.
 */
import { createServer, type Server } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import { silentLogger } from '../../lib/logger.js'
import { RunServerAssets } from './run-server-assets.js'
import { createRunServerListener } from './run-server-app.js'
import { startCleanup } from './run-server-cleanup.js'
import type { RunServerContext } from './run-server-context.js'
import { RunServerDisk, type RunServerPaths } from './run-server-files.js'
import { RunServerTasks } from './run-server-jobs.js'
import type { JobFault } from './run-server-progress.js'
import { attachProgressSocket } from './run-server-ws.js'
import { DEFAULT_RESULT_SIZE } from './result-bytes.js'
import {
  checkOptions,
  closeServer,
  listen,
  newStats,
  pickPort,
  type FakeRunServerOptions,
  type FakeRunServerStats,
} from './run-server-lifecycle.js'

export type {
  FakeRunServerOptions,
  FakeRunServerStats,
  FakeSubmission,
} from './run-server-lifecycle.js'
export { RUN_SERVER_PATHS } from './run-server-app.js'

export interface FakeRunServer {
  readonly url: string
  /** Known at once, even while the port is still closed (loading). */
  readonly port: number
  readonly paths: RunServerPaths
  readonly stats: FakeRunServerStats
  /** Resolves when the port is open (after `loadMs`; again after each restart). */
  readonly ready: Promise<void>
  /** The next job to start ends `error`, `error` = reason, message `合成失败: {reason}`. */
  failNext(reason: string): void
  /** The next job to start freezes at this progress, status `synthesizing`, for ever. */
  hangNext(atProgress?: number): void
  /** Close, forget every task (files stay), load again (`loadMs`), reopen on the same port. */
  restart(options?: { loadMs?: number }): Promise<void>
  close(): Promise<void>
}

/** However short a restart, clients see their connections close before the port answers again. */
const RESTART_DOWN_MS = 20

export async function startFakeRunServer(options: FakeRunServerOptions): Promise<FakeRunServer> {
  checkOptions(options)
  const host = options.host ?? '127.0.0.1'
  const loadMs = options.loadMs ?? 0
  const durationMs = options.durationMs ?? 3000
  const resultSize = options.resultSize ?? DEFAULT_RESULT_SIZE
  const clock = options.clock ?? (() => performance.now())
  const log = options.log ?? silentLogger()
  const secret = (options.apiSecret ?? '').trim()
  const disk = await RunServerDisk.open(options.dir)
  const assets = new RunServerAssets(options.assetTtlSeconds ?? 30 * 86_400)
  const { stats, mutable } = newStats()
  const faults: JobFault[] = []
  const closing = new AbortController()
  let sinceStart: string[] = []
  let running = 0
  let ctx: RunServerContext | null = null
  let up: { server: Server; stop: () => void } | null = null

  const newTasks = (): RunServerTasks =>
    new RunServerTasks({
      durationMs,
      clock,
      takeFault: () => faults.shift() ?? null,
      onStart: () => {
        running += 1
        mutable.maxConcurrent = Math.max(mutable.maxConcurrent, running)
      },
      onEnd: (task) => {
        running -= 1
        mutable.completed.push(task.taskId)
        if (task.state !== 'done') return null
        return disk.writeResult({ ...task, size: resultSize }).catch((err: unknown) => {
          log.warn({ err, taskId: task.taskId }, 'result not written')
        })
      },
    })

  const listener = createRunServerListener({ secret, context: () => ctx })

  const open = async (port: number, waitMs: number): Promise<number> => {
    if (waitMs > 0) await delay(waitMs, undefined, { signal: closing.signal })
    const server = createServer(listener)
    await listen(server, host, port)
    if (closing.signal.aborted) {
      await closeServer(server)
      return port
    }
    const dropSockets = attachProgressSocket(server, {
      secret,
      intervalMs: options.wsIntervalMs ?? 1000,
      context: () => ctx,
    })
    const stopCleanup = startCleanup({
      disk,
      assets,
      ttlSeconds: options.fileTtlSeconds ?? 86_400,
      intervalMs: options.cleanupIntervalMs ?? 3_600_000,
      log,
      onSweep: () => (mutable.sweeps += 1),
    })
    ctx = {
      disk,
      assets,
      resultSize,
      log,
      tasks: newTasks(),
      events: {
        upload: (hash, size) => mutable.uploads.push({ hash, size }),
        submit: (entry) => {
          sinceStart.push(entry.taskId)
          mutable.submissions.push({ ...entry, at: Date.now() })
        },
        ask: (taskId, what) => {
          mutable.asked.add(taskId)
          if (what === 'download') mutable.downloaded.add(taskId)
        },
        refused: () => (mutable.refused += 1),
      },
    }
    up = {
      server,
      stop: () => {
        stopCleanup()
        dropSockets()
      },
    }
    const address = server.address()
    return typeof address === 'object' && address !== null ? address.port : port
  }

  const stop = async (): Promise<void> => {
    ctx?.tasks.close()
    ctx = null
    running = 0
    const current = up
    up = null
    if (current === null) return
    current.stop()
    await closeServer(current.server)
  }

  /** Resolves once open; a close during the load resolves it too (nothing opens). */
  const opened = (port: number, waitMs: number): Promise<void> =>
    open(port, waitMs).then(
      () => undefined,
      (err: unknown) => {
        if (closing.signal.aborted) return
        log.error({ err, port }, 'fake run_server could not open its port')
        throw err
      },
    )

  let port = options.port ?? 0
  let ready: Promise<void>
  if (loadMs === 0) {
    port = await open(port, 0)
    ready = Promise.resolve()
  } else {
    // The port is known at once but stays closed (connections refused) while the models load.
    if (port === 0) port = await pickPort(host)
    ready = opened(port, loadMs)
    ready.catch(() => undefined)
  }
  const urlHost =
    host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  let closed: Promise<void> | undefined

  return {
    url: `http://${urlHost}:${String(port)}`,
    port,
    paths: disk.paths,
    stats,
    get ready() {
      return ready
    },
    failNext(reason: string): void {
      faults.push({ kind: 'fail', reason })
    },
    hangNext(atProgress = 20): void {
      if (!(atProgress >= 0 && atProgress < 100)) {
        throw new RangeError(`bad progress: ${String(atProgress)}`)
      }
      faults.push({ kind: 'hang', atProgress })
    },
    async restart(restartOptions = {}): Promise<void> {
      if (closed) throw new Error('fake run_server is closed')
      await ready.catch(() => undefined)
      await stop()
      mutable.forgotten.push(...sinceStart.filter((id) => !mutable.downloaded.has(id)))
      sinceStart = []
      ready = opened(port, Math.max(RESTART_DOWN_MS, restartOptions.loadMs ?? loadMs))
      await ready
    },
    close(): Promise<void> {
      closing.abort()
      closed ??= stop()
      return closed
    },
  }
}
