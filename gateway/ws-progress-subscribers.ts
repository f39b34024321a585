/**
 * The bookkeeping behind `/ws/progress/{task_id}` (ws-progress.ts does the upgrade and the auth): the
 * subscribed sockets, counted per task; a push when a task's progress changed (always the terminal
 * one, then a close); pushes skipped, never queued, while a slow reader has not drained its buffer
 * (cut if it stays stalled); and pings that cut peers that did not answer the previous one. One tick
 * asks for the progress of each subscribed task once, however many sockets follow it.
 */
import type { Logger } from 'pino'
import type { WebSocket } from 'ws'
import { appError, errorMessage, type AppError } from '../lib/errors.js'

/** The fields that decide whether a push is due; the rest of the object is sent as it is. */
export interface PushedProgress {
  readonly status: string
  readonly progress: number
  readonly current_frame?: number | undefined
  readonly message?: string | undefined
  readonly queue_position?: number | undefined
}

/** A task's progress, null if the task is unknown, or the error its lookup threw. */
export type Lookup = PushedProgress | null | Error

export interface SubscriberLimits {
  /** A socket with more than this still unsent skips pushes until it drains. */
  readonly maxBufferedBytes: number
  /** A socket that stays over `maxBufferedBytes` this long is cut. */
  readonly stalledMs: number
}

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

/** Send a last reply, run_server's `{code, msg}` for the error (its status and words), and close. */
export function finish(ws: WebSocket, err: AppError): void {
  ws.send(JSON.stringify({ code: err.status, msg: err.message }))
  ws.close(1000)
}

export class ProgressSubscribers {
  readonly #subscribers = new Set<Subscriber>()
  readonly #perTask = new Map<string, number>()
  readonly #log: Logger
  readonly #progressOf: (taskId: string) => PushedProgress | null
  readonly #limits: SubscriberLimits

  constructor(
    log: Logger,
    progressOf: (taskId: string) => PushedProgress | null,
    limits: SubscriberLimits,
  ) {
    this.#log = log
    this.#progressOf = progressOf
    this.#limits = limits
  }

  /** Subscribed sockets. */
  get size(): number {
    return this.#subscribers.size
  }

  /** Subscribed sockets of one task. */
  countOf(taskId: string): number {
    return this.#perTask.get(taskId) ?? 0
  }

  /** The task's progress; what the lookup throws is returned, not thrown. */
  lookup(taskId: string): Lookup {
    try {
      return this.#progressOf(taskId)
    } catch (err) {
      return err instanceof Error ? err : new Error(errorMessage(err))
    }
  }

  /** Follow `taskId` on `ws`, pushing `first` (its progress now) at once. */
  add(ws: WebSocket, taskId: string, first: PushedProgress): void {
    const sub: Subscriber = { ws, taskId, lastKey: null, alive: true, stalledSince: null }
    this.#subscribers.add(sub)
    this.#perTask.set(taskId, this.countOf(taskId) + 1)
    ws.on('pong', () => {
      sub.alive = true
    })
    ws.on('close', () => {
      this.#drop(sub)
    })
    this.#push(sub, first, Date.now())
  }

  /** Push what changed since the last tick, asking for each task's progress once. */
  tick(): void {
    const now = Date.now()
    const seen = new Map<string, Lookup>()
    for (const sub of [...this.#subscribers]) {
      let data = seen.get(sub.taskId)
      if (data === undefined) {
        data = this.lookup(sub.taskId)
        seen.set(sub.taskId, data)
      }
      if (data instanceof Error) {
        this.#log.error({ err: data, taskId: sub.taskId }, 'progress lookup failed')
        this.#drop(sub)
        sub.ws.close(1011)
      } else {
        this.#push(sub, data, now)
      }
    }
  }

  /** Cut the peers that did not answer the previous ping; ping the rest. */
  ping(): void {
    for (const sub of [...this.#subscribers]) {
      if (!sub.alive) {
        this.#drop(sub)
        sub.ws.terminate()
        continue
      }
      sub.alive = false
      sub.ws.ping()
    }
  }

  /** Forget every socket (they are closed by their owner). */
  clear(): void {
    this.#subscribers.clear()
    this.#perTask.clear()
  }

  #drop(sub: Subscriber): void {
    if (!this.#subscribers.delete(sub)) return
    const left = (this.#perTask.get(sub.taskId) ?? 1) - 1
    if (left > 0) this.#perTask.set(sub.taskId, left)
    else this.#perTask.delete(sub.taskId)
  }

  /** Push to one socket if due; a gone task, a terminal push or a stalled reader ends it. */
  #push(sub: Subscriber, data: PushedProgress | null, now: number): void {
    if (data === null) {
      this.#drop(sub)
      finish(sub.ws, appError('TASK_NOT_FOUND', { variant: 'purged' }))
      return
    }
    const terminal = isTerminal(data)
    const key = keyOf(data)
    if (!terminal && key === sub.lastKey) return
    if (sub.ws.bufferedAmount > this.#limits.maxBufferedBytes) {
      sub.stalledSince ??= now
      if (now - sub.stalledSince >= this.#limits.stalledMs) {
        this.#log.warn({ taskId: sub.taskId }, 'progress socket not reading; cut')
        this.#drop(sub)
        sub.ws.terminate()
      }
      return // the next tick sends what is current then
    }
    sub.stalledSince = null
    sub.ws.send(JSON.stringify({ code: 0, data }))
    sub.lastKey = key
    if (terminal) {
      this.#drop(sub)
      sub.ws.close(1000)
    }
  }
}
