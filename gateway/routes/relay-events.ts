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
import type { HttpAuth } from '../http-auth.js'
import type { TaskOutbox } from '../task-outbox.js'
import { appError } from '../../lib/errors.js'
import type { TaskEvent } from '../../protocol/index.js'
import { SseSink, lastEventIdOf, openEventStream, sseFrame } from './sse-sink.js'

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

export function relayEvents(deps: RelayEventsDeps): Router {
  const router = Router({ caseSensitive: true })
  router.get(RELAY_EVENTS_PATH, (req, res) => {
    const who = deps.auth.principal(req).kind
    if (who === 'anonymous') throw appError('UNAUTHORIZED')
    if (who !== 'admin') throw appError('FORBIDDEN', { variant: 'adminOnly' })
    const from = resumeFrom(req, deps.outbox)
    openEventStream(req, res)
    startStream(deps, res, from)
  })
  return router
}

/** The id to continue after: `Last-Event-ID`, else `?last_event_id=`, else the newest event. */
function resumeFrom(req: Request, outbox: TaskOutbox): number {
  const latest = outbox.latestId()
  return lastEventIdOf(req, latest) ?? latest
}

function startStream(deps: RelayEventsDeps, res: Response, from: number): void {
  let cursor = from
  let scheduled = false
  const pump = (): void => {
    while (sink.writable()) {
      const page = deps.outbox.after(cursor, PAGE)
      const last = page.at(-1)
      if (!last) return
      // One write per page: what the socket has not taken yet is at most one page per client.
      cursor = last.id
      sink.write(page.map(frame).join(''))
    }
  }
  // The listener only wakes the pump; the pump reads the table, so nothing is missed between
  // the first page and the subscription, and nothing is held in memory for a slow client.
  const unsubscribe = deps.outbox.subscribe(() => {
    if (scheduled || sink.closed) return
    scheduled = true
    setImmediate(() => {
      scheduled = false
      pump()
    })
  })
  const sink = new SseSink(res, {
    keepAliveMs: deps.keepAliveMs ?? DEFAULT_KEEP_ALIVE_MS,
    stuckMs: deps.stuckMs ?? DEFAULT_STUCK_MS,
    onDrain: pump,
    onClose: unsubscribe,
  })
  pump()
}

/** One SSE message: the outbox id as `id`, the event as one line of JSON. */
function frame(event: TaskEvent): string {
  return sseFrame({ id: event.id, json: JSON.stringify(event) })
}
