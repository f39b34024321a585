/**
 * `GET /ws/progress/{task_id}?token=`: progress pushed over a WebSocket, as run_server's flask-sock
 * route does it (docs/real-services.md §1), so the unchanged PC app with `websockets` is pushed its
 * progress instead of polling. Each socket gets `{"code":0,"data":<progress data>}` at once, then
 * whenever (status, progress, current_frame) changes, checked on one shared timer (1 s), and always
 * the terminal one (`done` or `error`), after which it is closed. Beyond run_server, a change of
 * `message` or `queue_position` is pushed too: the PC app shows both, and while the GPU is off
 * the relay's message is the estimate that counts down (run_server's text never changes alone). A wrong `token` (when API_SECRET
 * is set) gets one `{"code":401,"msg":"鉴权失败"}`, an unknown task one
 * `{"code":404,"msg":"任务 {id} 不存在"}`, each followed by a close.
 *
 * Bounded: a cap on sockets in all and per task (over it the upgrade is refused with 503, and the
 * PC app polls instead), pings that end dead peers, pushes skipped (never queued) while a slow
 * reader has not drained its buffer, and tiny inbound frames. Other upgrade paths get a 404.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { WebSocketServer, type WebSocket } from 'ws'
import { secretMatches } from '../lib/credentials.js'
import { errorMessage } from '../lib/errors.js'
import { TaskId } from '../protocol/index.js'

/** The fields that decide whether a push is due; the rest of the object is sent as it is. */
export interface PushedProgress {
  readonly status: string
  readonly progress: number
  readonly current_frame?: number | undefined
  readonly message?: string | undefined
  readonly queue_position?: number | undefined
}

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

interface Subscriber {
  readonly ws: WebSocket
  readonly taskId: string
  lastKey: string | null
  alive: boolean
  /** When the buffer was first seen over the limit; null while it drains. */
  stalledSince: number | null
}

const isTerminal = (p: PushedProgress): boolean => p.status === 'done' || p.status === 'error'
const keyOf = (p: PushedProgress): string =>
  JSON.stringify([p.status, p.progress, p.current_frame, p.message, p.queue_position])

/** Refuse an upgrade with a bare HTTP reply and drop the socket. */
function refuse(socket: Duplex, status: 404 | 503, text: string): void {
  socket.once('finish', () => socket.destroy())
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
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
  const subscribers = new Set<Subscriber>()
  /** Every upgraded socket, subscribed or being turned away, until it has closed. */
  const live = new Set<WebSocket>()
  const perTask = new Map<string, number>()
  let handshakes = 0
  let closing = false

  const finish = (ws: WebSocket, reply: object): void => {
    ws.send(JSON.stringify(reply))
    ws.close(1000)
  }

  const drop = (sub: Subscriber): void => {
    if (!subscribers.delete(sub)) return
    const left = (perTask.get(sub.taskId) ?? 1) - 1
    if (left > 0) perTask.set(sub.taskId, left)
    else perTask.delete(sub.taskId)
  }

  /** Push to one socket if due; false once it is done with. */
  const push = (sub: Subscriber, data: PushedProgress | null, now: number): void => {
    if (data === null) {
      drop(sub)
      finish(sub.ws, { code: 404, msg: '任务已被清理' })
      return
    }
    const terminal = isTerminal(data)
    const key = keyOf(data)
    if (!terminal && key === sub.lastKey) return
    if (sub.ws.bufferedAmount > o.maxBufferedBytes) {
      sub.stalledSince ??= now
      if (now - sub.stalledSince >= o.stalledMs) {
        log.warn({ taskId: sub.taskId }, 'progress socket not reading; cut')
        drop(sub)
        sub.ws.terminate()
      }
      return // the next tick sends what is current then
    }
    sub.stalledSince = null
    sub.ws.send(JSON.stringify({ code: 0, data }))
    sub.lastKey = key
    if (terminal) {
      drop(sub)
      sub.ws.close(1000)
    }
  }

  const lookup = (taskId: string): PushedProgress | null | Error => {
    try {
      return deps.progressOf(taskId)
    } catch (err) {
      return err instanceof Error ? err : new Error(errorMessage(err))
    }
  }

  const tick = (): void => {
    const now = Date.now()
    const seen = new Map<string, PushedProgress | null | Error>()
    for (const sub of [...subscribers]) {
      let data = seen.get(sub.taskId)
      if (data === undefined) {
        data = lookup(sub.taskId)
        seen.set(sub.taskId, data)
      }
      if (data instanceof Error) {
        log.error({ err: data, taskId: sub.taskId }, 'progress lookup failed')
        drop(sub)
        sub.ws.close(1011)
      } else {
        push(sub, data, now)
      }
    }
  }

  const ping = (): void => {
    for (const sub of [...subscribers]) {
      if (!sub.alive) {
        drop(sub)
        sub.ws.terminate()
        continue
      }
      sub.alive = false
      sub.ws.ping()
    }
  }

  const timers = [setInterval(tick, o.intervalMs), setInterval(ping, o.pingIntervalMs)]
  for (const t of timers) t.unref()

  const open = (ws: WebSocket, rawId: string, token: string): void => {
    live.add(ws)
    ws.on('close', () => live.delete(ws))
    ws.on('error', (err) => log.debug({ err: err.message }, 'progress socket error'))
    if (deps.apiSecret !== null && !secretMatches(token.trim(), deps.apiSecret)) {
      log.warn({ taskId: rawId.slice(0, 64) }, 'progress socket: token refused')
      finish(ws, { code: 401, msg: '鉴权失败' })
      return
    }
    const id = TaskId.safeParse(rawId)
    const data = id.success ? lookup(id.data) : null
    if (data instanceof Error) {
      log.error({ err: data, taskId: rawId }, 'progress lookup failed')
      ws.close(1011)
      return
    }
    if (!id.success || data === null) {
      finish(ws, { code: 404, msg: `任务 ${rawId.slice(0, 128)} 不存在` })
      return
    }
    const sub: Subscriber = { ws, taskId: id.data, lastKey: null, alive: true, stalledSince: null }
    subscribers.add(sub)
    perTask.set(sub.taskId, (perTask.get(sub.taskId) ?? 0) + 1)
    ws.on('pong', () => {
      sub.alive = true
    })
    ws.on('close', () => {
      drop(sub)
    })
    push(sub, data, Date.now())
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
      subscribers.size + handshakes >= o.maxSockets || (perTask.get(rawId) ?? 0) >= o.maxPerTask
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
      else open(ws, rawId, url.searchParams.get('token') ?? '')
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
      perTask.clear()
      await Promise.all(
        [...live].map(
          (ws) =>
            new Promise<void>((resolve) => {
              const cut = setTimeout(() => {
                ws.terminate()
              }, CLOSE_GRACE_MS)
              ws.once('close', () => {
                clearTimeout(cut)
                resolve()
              })
              ws.close(1001, 'server shutting down')
            }),
        ),
      )
      wss.close()
    },
  }
}
