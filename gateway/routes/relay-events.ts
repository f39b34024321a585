/**
 * `GET /api/relay/events` (admin token): the task event stream as server-sent events
 * (docs/design.md §3.7), the base for the dashboard, webhooks and metrics. Each event's SSE `id`
 * is its outbox id; a client that reconnects with `Last-Event-ID` (or `?last_event_id=`) gets
 * every event after it, from the table, so a gateway restart in between loses nothing and repeats
 * nothing. Without one it gets what happens from now on; `last_event_id=0` replays all that is kept.
 *
 * Memory is bounded per client: the stream holds a cursor, not a queue. Events are read from the
 * outbox in pages and written while the socket takes them; a client that stops reading is left
 * behind (its cursor waits) and is disconnected once it has not drained for `stuckMs`.
 */
import type { Request, Response } from 'express'
import { Router } from 'express'
import { z } from 'zod'
import { validate } from '../http-envelope.js'
import type { HttpAuth } from '../http-auth.js'
import type { TaskOutbox } from '../task-outbox.js'
import { appError } from '../../lib/errors.js'
import type { TaskEvent } from '../../protocol/index.js'

export interface RelayEventsDeps {
  readonly outbox: TaskOutbox
  readonly auth: HttpAuth
  /** A comment line this often keeps proxies from closing a quiet stream. */
  readonly keepAliveMs?: number
  /** A client that has not taken what was written for this long is disconnected. */
  readonly stuckMs?: number
}

export const RELAY_EVENTS_PATH = '/api/relay/events'

const PAGE = 200
const DEFAULT_KEEP_ALIVE_MS = 15_000
const DEFAULT_STUCK_MS = 60_000
/** What EventSource waits before it reconnects (ms), sent once at the start. */
const RETRY_MS = 2_000

const EventId = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

export function relayEvents(deps: RelayEventsDeps): Router {
  const router = Router({ caseSensitive: true })
  router.get(RELAY_EVENTS_PATH, (req, res) => {
    const who = deps.auth.principal(req).kind
    if (who === 'anonymous') throw appError('UNAUTHORIZED')
    if (who !== 'admin') throw appError('FORBIDDEN', { variant: 'adminOnly' })
    const from = resumeFrom(req, deps.outbox)
    openStream(req, res)
    new EventStream(deps, res, from).start()
  })
  return router
}

/** The id to continue after: `Last-Event-ID`, else `?last_event_id=`, else the newest event. */
function resumeFrom(req: Request, outbox: TaskOutbox): number {
  const header = req.get('last-event-id')
  const query: unknown = req.query['last_event_id']
  const raw = header ?? (typeof query === 'string' ? query : undefined)
  const latest = outbox.latestId()
  if (raw === undefined || raw.trim() === '') return latest
  // An id beyond the newest (a database restored from a backup) would hide every event until
  // the ids caught up: such a client continues from now.
  return Math.min(validate(EventId, raw.trim(), 'Last-Event-ID'), latest)
}

function openStream(req: Request, res: Response): void {
  // A stream has no end: no idle timeout on its socket, and every event goes out at once.
  req.socket.setTimeout(0)
  req.socket.setNoDelay(true)
  res.status(200)
  res.set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // nginx would otherwise hold events back in its buffer.
    'X-Accel-Buffering': 'no',
  })
  res.flushHeaders()
}

class EventStream {
  readonly #deps: RelayEventsDeps
  readonly #res: Response
  #cursor: number
  #waitingForDrain = false
  #scheduled = false
  #closed = false
  #unsubscribe: () => void = () => undefined
  #keepAlive: NodeJS.Timeout | undefined
  #stuck: NodeJS.Timeout | undefined

  constructor(deps: RelayEventsDeps, res: Response, cursor: number) {
    this.#deps = deps
    this.#res = res
    this.#cursor = cursor
  }

  start(): void {
    this.#res.on('close', () => this.#close())
    this.#res.on('drain', () => {
      this.#waitingForDrain = false
      clearTimeout(this.#stuck)
      this.#pump()
    })
    // The listener only wakes the pump; the pump reads the table, so nothing is missed between
    // the first page and the subscription, and nothing is held in memory for a slow client.
    this.#unsubscribe = this.#deps.outbox.subscribe(() => this.#schedule())
    this.#keepAlive = setInterval(() => {
      if (!this.#waitingForDrain) this.#write(': keep-alive\n\n')
    }, this.#deps.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS)
    this.#write(`retry: ${String(RETRY_MS)}\n\n`)
    this.#pump()
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#pump()
    })
  }

  #pump(): void {
    while (!this.#closed && !this.#waitingForDrain) {
      const page = this.#deps.outbox.after(this.#cursor, PAGE)
      const last = page.at(-1)
      if (!last) return
      // One write per page: what the socket has not taken yet is at most one page per client.
      this.#cursor = last.id
      this.#write(page.map(frame).join(''))
    }
  }

  /** Write; once the socket's buffer is full, wait for `drain` (and cut a client that never drains). */
  #write(text: string): void {
    if (this.#closed || this.#res.write(text)) return
    this.#waitingForDrain = true
    clearTimeout(this.#stuck)
    this.#stuck = setTimeout(() => this.#res.destroy(), this.#deps.stuckMs ?? DEFAULT_STUCK_MS)
  }

  #close(): void {
    this.#closed = true
    this.#unsubscribe()
    clearInterval(this.#keepAlive)
    clearTimeout(this.#stuck)
  }
}

/** One SSE message: the outbox id as `id`, the event as one line of JSON. */
function frame(event: TaskEvent): string {
  return `id: ${String(event.id)}\ndata: ${JSON.stringify(event)}\n\n`
}
