/**
 * `GET /api/heygem/task/events?task_id=`: one task's changes as server-sent events, for a PC that
 * prefers push to polling. Who may open it is decided as for `GET /api/heygem/task/status`
 * (http-auth.ts `assertVisible`: another owner's task is the same 404 as an unknown one).
 *
 * Every message is an event `status` whose data is the status API's data (TaskStatusData, as the
 * task is now). One is sent at the start, one for each outbox event of the task (its SSE `id` is
 * the outbox id), and, between events, whenever the words or the estimate moved (a queued task's
 * countdown, a task ahead leaving the queue; no `id`: those move no resume point). A client that
 * reconnects with `Last-Event-ID` gets one message for each of the task's events after it, from
 * the table: nothing missed, nothing repeated. The stream ends after a terminal state.
 *
 * Bounded like the admin stream (sse-sink.ts): a cursor, not a queue, per client; a client that
 * stops reading is cut; at most `maxPerCaller` streams per caller (address and credential) at once.
 */
import type { Response } from 'express'
import { Router } from 'express'
import { z } from 'zod'
import { validate } from '../http-envelope.js'
import type { HttpAuth } from '../http-auth.js'
import type { TaskOutbox } from '../task-outbox.js'
import type { TaskService } from '../task-service.js'
import { limitKey } from './deps.js'
import { SseSink, lastEventIdOf, openEventStream, sseFrame } from './sse-sink.js'
import { StreamSlots } from './stream-slots.js'
import { statusData } from './task-api.js'
import { appError } from '../../lib/errors.js'
import {
  TASK_EVENT_STATUS,
  TASK_PATHS,
  TaskId,
  isTerminal,
  type TaskEvent,
  type TaskState,
} from '../../protocol/index.js'

export interface TaskEventsDeps {
  readonly views: TaskService
  readonly outbox: TaskOutbox
  readonly auth: HttpAuth
  /** Streams one caller may have open at once; one more is refused 429. */
  readonly maxPerCaller: number
  /** Heartbeat period; a queued task's estimate is looked at as often. */
  readonly heartbeatMs: number
  /** A client that has not taken what was written for this long is disconnected. */
  readonly stuckMs: number
}

/** Events read from the table at once (one write). */
const PAGE = 100
/** What a refused client is told to wait before it tries again (s). */
const RETRY_AFTER_S = 5

export function taskEvents(deps: TaskEventsDeps): Router {
  const slots = new StreamSlots(deps.maxPerCaller)
  const router = Router({ caseSensitive: true })
  router.get(TASK_PATHS.events, (req, res) => {
    const query = validate(z.object({ task_id: TaskId }).loose(), req.query, 'task_id')
    const row = deps.views.get(query.task_id)
    deps.auth.assertVisible(req, row.owner)
    const latest = deps.outbox.latestId()
    const resume = lastEventIdOf(req, latest)
    const release = slots.take(limitKey(req, deps.auth))
    if (release === null) {
      res.set('Retry-After', String(RETRY_AFTER_S))
      throw appError('RATE_LIMITED', {
        variant: 'streams',
        params: { max: deps.maxPerCaller, wait: RETRY_AFTER_S },
      })
    }
    res.once('close', release)
    openEventStream(req, res)
    startTaskStream({
      deps,
      res,
      taskId: row.id,
      cursor: resume ?? latest,
      resumed: resume !== null,
    })
  })
  return router
}

function startTaskStream(s: {
  readonly deps: TaskEventsDeps
  readonly res: Response
  readonly taskId: string
  /** The outbox id this client has seen up to. */
  readonly cursor: number
  /** The client named that id itself (else it is "now"). */
  readonly resumed: boolean
}): void {
  const { deps, taskId } = s
  let cursor = s.cursor
  /** The data last sent, as JSON: a refresh that would say the same is not sent. */
  let lastSent = ''
  let lastState: TaskState | null = null
  let gone = false
  let scheduled = false

  /** The task as the status API shows it now, as JSON; null once it is gone (purged). */
  const snapshot = (): string | null => {
    const row = deps.views.find(taskId)
    if (!row) {
      gone = true
      return null
    }
    lastState = row.state
    return JSON.stringify(statusData(deps.views.view(row)))
  }
  const message = (id: number | null, json: string): string => {
    lastSent = json
    return sseFrame({ id, event: TASK_EVENT_STATUS, json })
  }
  /** Send the task's events after the cursor, each with the task as it is now; true if any. */
  const pump = (): boolean => {
    let sent = false
    while (sink.writable()) {
      const page = deps.outbox.ofTaskAfter(taskId, cursor, PAGE)
      const last = page.at(-1)
      if (!last) break
      const json = snapshot()
      if (json === null) break
      cursor = last.id
      sent = true
      // One write per page: what the socket has not taken is at most one page per client.
      sink.write(page.map((event: TaskEvent) => message(event.id, json)).join(''))
    }
    return sent
  }
  /** Once every event is out: the stream ends after a terminal state, or the task gone. */
  const finishIfOver = (): boolean => {
    if (sink.blocked) return false
    if (!gone && (lastState === null || !isTerminal(lastState))) return false
    sink.end()
    return true
  }
  /** A message without an id when what the client would see has changed. */
  const refresh = (): string | null => {
    const json = snapshot()
    if (json === null || json === lastSent) return null
    return message(null, json)
  }
  const wake = (): void => {
    if (!sink.writable()) return
    pump()
    if (finishIfOver() || !sink.writable() || lastState !== 'queued') return
    const text = refresh()
    if (text !== null) sink.write(text)
    finishIfOver()
  }
  const unsubscribe = deps.outbox.subscribe((event) => {
    // Another task's progress moves nothing of this one; its other events may move the queue.
    const mine = event.taskId === taskId
    if (!mine && (event.kind === 'progress' || lastState !== 'queued')) return
    if (scheduled || sink.closed) return
    scheduled = true
    setImmediate(() => {
      scheduled = false
      wake()
    })
  })
  const sink = new SseSink(s.res, {
    keepAliveMs: deps.heartbeatMs,
    stuckMs: deps.stuckMs,
    onDrain: wake,
    onClose: unsubscribe,
    // While queued, the estimate counts down: the heartbeat carries it when it moved.
    beat: () => (lastState === 'queued' ? refresh() : null),
  })

  // At the start: the task's events after the client's id, or the task as it is now.
  if (!pump()) {
    const json = snapshot()
    if (json !== null) sink.write(message(s.resumed ? null : cursor, json))
  }
  finishIfOver()
}
