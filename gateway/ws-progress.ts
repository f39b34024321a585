/**
 * `GET /ws/progress/{task_id}?token=`: progress pushed over a WebSocket, as run_server's flask-sock
 * route does it (docs/real-services.md §1), so the unchanged PC app with `websockets` is pushed its
 * progress instead of polling. Each socket gets `{"code":0,"data":<progress data>}` at once, then
 * whenever (status, progress, current_frame) changes, checked on one shared timer (1 s), and always
 * the terminal one (`done` or `error`), after which it is closed. Beyond run_server, a change of
 * `message` or `queue_position` is pushed too: the PC app shows both, and while the GPU is off
 * the relay's message is the estimate that counts down (run_server's text never changes alone). A wrong `token` (when API_SECRET
 * is set) gets one `{"code":401,"msg":"鉴权失败"}`, an unknown task one
 * `{"code":404,"msg":"任务 {id} 不存在"}`, each followed by a close. Wrong tokens count as failed
 * logins of the address like the HTTP API's (login-backoff.ts): in backoff, a token is not looked
 * at and the socket gets one `{"code":429,"msg":"鉴权失败次数过多，请 {n} 秒后再试"}`.
 *
 * Bounded: a cap on sockets in all and per task (over it the upgrade is refused with 503, and the
 * PC app polls instead), pings that end dead peers, pushes skipped (never queued) while a slow
 * reader has not drained its buffer, and tiny inbound frames. Other upgrade paths get a 404.
 * This file is the upgrade, the auth and the first reply; ws-progress-subscribers.ts keeps the
 * subscribed sockets and pushes to them.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { callerAddresses, type CallerAddresses } from './caller-address.js'
import type { LoginBackoff } from './login-backoff.js'
import { ProgressSubscribers, finish, type PushedProgress } from './ws-progress-subscribers.js'
import { secretMatches } from '../lib/credentials.js'
import { appError } from '../lib/errors.js'
import { TaskId } from '../protocol/index.js'

export type { PushedProgress } from './ws-progress-subscribers.js'

export interface ProgressSocketOptions {
  /** How often tasks are checked for a change (run_server: 1 s). */
  readonly intervalMs?: number
  /** Ping period; a peer that did not answer the previous ping is cut. */
  readonly pingIntervalMs?: number
  readonly maxSockets?: number
  readonly maxPerTask?: number
  /** A socket with more than this still unsent skips pushes until it drains. */
  readonly maxBufferedBytes?: number
  /** A socket that stays over `maxBufferedBytes` this long is cut. */
  readonly stalledMs?: number
}

export interface ProgressSocketDeps {
  readonly log: Logger
  /** `API_SECRET`: `?token=` must equal it when set. */
  readonly apiSecret: string | null
  /** Failed logins per address, shared with the HTTP API. */
  readonly logins?: Pick<LoginBackoff, 'retryAfterS' | 'failed'>
  /** Who is calling, by address (a trusted proxy's forwarded one); default: the socket's peer. */
  readonly callers?: CallerAddresses
  /** The task's progress data exactly as `GET /api/heygem/progress` returns it; null if unknown. */
  readonly progressOf: (taskId: string) => PushedProgress | null
}

export interface ProgressSockets {
  /** Open progress sockets. */
  readonly size: number
  /** Refuse new upgrades, close every socket (terminating those that do not answer). */
  close(): Promise<void>
}

const PATH = /^\/ws\/progress\/([^/?#]+)$/
const DEFAULTS = {
  intervalMs: 1_000,
  pingIntervalMs: 30_000,
  maxSockets: 1_000,
  maxPerTask: 20,
  maxBufferedBytes: 64 * 1024,
  stalledMs: 30_000,
} as const
const CLOSE_GRACE_MS = 1_000

/** Refuse an upgrade with a bare HTTP reply and drop the socket. */
function refuse(socket: Duplex, status: 404 | 503, text: string): void {
  socket.once('finish', () => socket.destroy())
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
}

/** Close `ws`, terminating it if it has not closed within the grace period. */
function closeWithin(ws: WebSocket, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const cut = setTimeout(() => {
      ws.terminate()
    }, graceMs)
    ws.once('close', () => {
      clearTimeout(cut)
      resolve()
    })
    ws.close(1001, 'server shutting down')
  })
}

export function attachProgressSockets(
  server: Server,
  deps: ProgressSocketDeps,
  options: ProgressSocketOptions = {},
): ProgressSockets {
  const o = { ...DEFAULTS, ...options }
  const log = deps.log.child({ part: 'ws-progress' })
  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: 1024, // clients have nothing to say
  })
  const subscribers = new ProgressSubscribers(log, deps.progressOf, o)
  /** Every upgraded socket, subscribed or being turned away, until it has closed. */
  const live = new Set<WebSocket>()
  let handshakes = 0
  let closing = false

  const timers = [
    setInterval(() => {
      subscribers.tick()
    }, o.intervalMs),
    setInterval(() => {
      subscribers.ping()
    }, o.pingIntervalMs),
  ]
  for (const t of timers) t.unref()

  /** A socket upgraded for `rawId`, with the `?token=` it gave and the caller's address. */
  const open = (
    ws: WebSocket,
    asked: { readonly rawId: string; readonly token: string; readonly ip: string },
  ): void => {
    const { rawId, token, ip } = asked
    live.add(ws)
    ws.on('close', () => live.delete(ws))
    ws.on('error', (err) => log.debug({ err: err.message }, 'progress socket error'))
    if (deps.apiSecret !== null) {
      const given = token.trim()
      const wait = given === '' ? 0 : (deps.logins?.retryAfterS(ip) ?? 0)
      if (wait > 0) {
        finish(ws, appError('TOO_MANY_FAILED_LOGINS', { params: { wait } }))
        return
      }
      if (!secretMatches(given, deps.apiSecret)) {
        const failure = given === '' ? null : (deps.logins?.failed(ip) ?? null)
        log.warn({ taskId: rawId.slice(0, 64), ip, ...failure }, 'progress socket: token refused')
        finish(ws, appError('UNAUTHORIZED'))
        return
      }
    }
    const id = TaskId.safeParse(rawId)
    const data = id.success ? subscribers.lookup(id.data) : null
    if (data instanceof Error) {
      log.error({ err: data, taskId: rawId }, 'progress lookup failed')
      ws.close(1011)
      return
    }
    if (!id.success || data === null) {
      const params = { id: rawId.slice(0, 128) }
      finish(ws, appError('TASK_NOT_FOUND', { variant: 'unknownId', params }))
      return
    }
    subscribers.add(ws, id.data, data)
  }

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined) // a peer gone mid-handshake
    let url: URL
    try {
      url = new URL(req.url ?? '/', 'http://gateway')
    } catch {
      refuse(socket, 404, 'Not Found')
      return
    }
    const match = PATH.exec(url.pathname)
    const encodedId = match?.[1]
    if (closing || encodedId === undefined) {
      refuse(socket, 404, 'Not Found')
      return
    }
    let rawId: string
    try {
      rawId = decodeURIComponent(encodedId)
    } catch {
      rawId = encodedId
    }
    const busy =
      subscribers.size + handshakes >= o.maxSockets || subscribers.countOf(rawId) >= o.maxPerTask
    if (busy) {
      log.warn({ sockets: subscribers.size }, 'progress socket refused: too many open')
      refuse(socket, 503, 'Service Unavailable')
      return
    }
    handshakes += 1
    let settled = false
    const settle = (): void => {
      if (!settled) handshakes -= 1
      settled = true
    }
    socket.once('close', settle) // a handshake ws refused (bad headers) never calls back
    wss.handleUpgrade(req, socket, head, (ws) => {
      settle()
      if (closing) ws.terminate()
      else
        open(ws, {
          rawId,
          token: url.searchParams.get('token') ?? '',
          ip: (deps.callers ?? callerAddresses([])).of(req),
        })
    })
  }
  server.on('upgrade', onUpgrade)

  return {
    get size() {
      return subscribers.size
    },
    async close() {
      closing = true
      for (const t of timers) clearInterval(t)
      server.off('upgrade', onUpgrade)
      subscribers.clear()
      await Promise.all([...live].map((ws) => closeWithin(ws, CLOSE_GRACE_MS)))
      wss.close()
    },
  }
}
