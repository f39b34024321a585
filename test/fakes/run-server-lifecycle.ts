/**
 * The fake run_server's options, its `stats` (what the e2e tests count: submissions, runs, who asked
 * about what) and the socket chores of opening and closing its port.
 */
import { createServer as createNetServer } from 'node:net'
import type { Server } from 'node:http'
import type { Logger } from 'pino'

export interface FakeRunServerOptions {
  /** Its base folder: `uploads/` (with `store/`) and `outputs/`; created if missing; kept. */
  readonly dir: string
  readonly host?: string
  /** 0 (default): any free port, kept across `restart()`. */
  readonly port?: number
  /** How long one job runs (default 3000 ms). */
  readonly durationMs?: number
  /** Bytes of each result video (default 64 KiB). */
  readonly resultSize?: number
  /** Monotonic milliseconds for the job timeline (default `performance.now`). */
  readonly clock?: () => number
  readonly log?: Logger
  /** config.ini `api_secret`: empty or absent = no auth. */
  readonly apiSecret?: string
  /** The model load: the port stays closed this long at start (default 0) and on each restart. */
  readonly loadMs?: number
  /** config.ini `file_ttl_seconds` (default 86400); fractions allowed for tests. */
  readonly fileTtlSeconds?: number
  /** config.ini `cleanup_interval_seconds`, in ms (default 3,600,000). */
  readonly cleanupIntervalMs?: number
  /** How often the progress WebSocket looks for a change (default 1000 ms, as the real one). */
  readonly wsIntervalMs?: number
  /** How long assets are kept (default 30 days). */
  readonly assetTtlSeconds?: number
}

export interface FakeSubmission {
  readonly taskId: string
  readonly audioHash: string
  readonly videoHash: string
  /** A cache hit: answered done at once, nothing ran. */
  readonly cached: boolean
  /** Wall-clock ms. */
  readonly at: number
}

export interface FakeRunServerStats {
  /** Every accepted submit (and legacy upload), in order, across restarts; cache hits flagged. */
  readonly submissions: readonly FakeSubmission[]
  /** Every answered upload_file, under the hash it answered. */
  readonly uploads: readonly { readonly hash: string; readonly size: number }[]
  /** Task ids of jobs that ran and ended (done or error), in the order they ended. */
  readonly completed: readonly string[]
  /** The most jobs ever running at once: 1 for a faithful GPU service. */
  readonly maxConcurrent: number
  /** Task ids someone asked about (progress, WebSocket or download) after submitting them. */
  readonly asked: ReadonlySet<string>
  /** Task ids whose result was downloaded. */
  readonly downloaded: ReadonlySet<string>
  /** Task ids a restart forgot before their result was downloaded: work lost with the service. */
  readonly forgotten: readonly string[]
  /** TTL cleanup sweeps done so far. */
  readonly sweeps: number
  /** HTTP requests refused with 401 (a wrong or missing secret). */
  readonly refused: number
}

interface MutableStats {
  submissions: FakeSubmission[]
  uploads: { hash: string; size: number }[]
  completed: string[]
  maxConcurrent: number
  asked: Set<string>
  downloaded: Set<string>
  forgotten: string[]
  sweeps: number
  refused: number
}

export function newStats(): { stats: FakeRunServerStats; mutable: MutableStats } {
  const mutable: MutableStats = {
    submissions: [],
    uploads: [],
    completed: [],
    maxConcurrent: 0,
    asked: new Set(),
    downloaded: new Set(),
    forgotten: [],
    sweeps: 0,
    refused: 0,
  }
  return { stats: mutable, mutable }
}

function positive(name: string, value: number | undefined, allowZero = false): void {
  if (value === undefined) return
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new RangeError(`bad ${name}: ${String(value)}`)
  }
}

export function checkOptions(options: FakeRunServerOptions): void {
  const { port = 0, resultSize = 0 } = options
  if (options.dir === '') throw new RangeError('dir is required')
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`bad port: ${String(port)}`)
  }
  if (!Number.isSafeInteger(resultSize) || resultSize < 0) {
    throw new RangeError(`bad resultSize: ${String(resultSize)}`)
  }
  positive('durationMs', options.durationMs)
  positive('loadMs', options.loadMs, true)
  positive('fileTtlSeconds', options.fileTtlSeconds, true)
  positive('cleanupIntervalMs', options.cleanupIntervalMs)
  positive('wsIntervalMs', options.wsIntervalMs)
  positive('assetTtlSeconds', options.assetTtlSeconds)
}

/** A port free right now (bound and released), to open later while it stays closed meanwhile. */
export function pickPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer()
    probe.once('error', reject)
    probe.listen(0, host, () => {
      const address = probe.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      probe.close(() => {
        resolve(port)
      })
    })
  })
}

export function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => {
      if (err) reject(err)
      else resolve()
    })
    // Keep-alive and in-flight connections die with the process, as with a real restart.
    server.closeAllConnections()
  })
}
