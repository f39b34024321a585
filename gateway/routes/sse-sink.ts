/**
 * What every server-sent events route of the gateway shares (`GET /api/relay/events`,
 * `GET /api/heygem/task/events`): the response headers, the `Last-Event-ID` a client resumes
 * from, and a sink that writes while the socket takes it. The sink holds no queue: its owner
 * writes only while `blocked` is false and is woken by `onDrain`; a client that has not taken
 * what was written for `stuckMs` is disconnected. A keep-alive line goes out every `keepAliveMs`
 * so proxies do not close a quiet stream (or what `beat` returns instead).
 */
import type { Request, Response } from 'express'
import { z } from 'zod'
import { validate } from '../http-envelope.js'

/** What EventSource waits before it reconnects (ms), sent once at the start. */
const RETRY_MS = 2_000

const EventId = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/**
 * The id a client continues after: `Last-Event-ID`, else `?last_event_id=`; null for none. An id
 * beyond `latest` (a database restored from a backup) would hide every event until the ids caught
 * up: such a client continues from now (`latest`). A malformed one is a 400.
 */
export function lastEventIdOf(req: Request, latest: number): number | null {
  const header = req.get('last-event-id')
  const query: unknown = req.query['last_event_id']
  const raw = header ?? (typeof query === 'string' ? query : undefined)
  if (raw === undefined || raw.trim() === '') return null
  return Math.min(validate(EventId, raw.trim(), 'Last-Event-ID'), latest)
}

/** Answer 200 as an event stream, headers sent at once. */
export function openEventStream(req: Request, res: Response): void {
  // A stream has no end: no idle timeout on its socket (the sink cuts a stuck client), and every
  // event goes out at once.
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

/** One SSE message, its data one line of JSON; `id` null: it moves no client's resume point. */
export function sseFrame(frame: {
  readonly id: number | null
  readonly event?: string
  readonly json: string
}): string {
  const id = frame.id === null ? '' : `id: ${String(frame.id)}\n`
  const event = frame.event === undefined ? '' : `event: ${frame.event}\n`
  return `${id}${event}data: ${frame.json}\n\n`
}

export interface SseSinkOptions {
  readonly keepAliveMs: number
  readonly stuckMs: number
  /** The socket took everything written: write more. */
  readonly onDrain: () => void
  /** The stream ended (either side): drop subscriptions. Called once. */
  readonly onClose: () => void
  /** What to write on a keep-alive tick instead of a comment line (null: the comment). */
  readonly beat?: () => string | null
}

export class SseSink {
  readonly #res: Response
  readonly #opts: SseSinkOptions
  #blocked = false
  #closed = false
  #keepAlive: NodeJS.Timeout | undefined
  #stuck: NodeJS.Timeout | undefined

  constructor(res: Response, opts: SseSinkOptions) {
    this.#res = res
    this.#opts = opts
    res.on('close', () => {
      clearTimeout(this.#stuck)
      this.#stop()
    })
    res.on('drain', () => {
      this.#blocked = false
      clearTimeout(this.#stuck)
      if (!this.#closed) opts.onDrain()
    })
    this.#keepAlive = setInterval(() => {
      if (this.#blocked || this.#closed) return
      this.write(opts.beat?.() ?? ': keep-alive\n\n')
    }, opts.keepAliveMs)
    this.write(`retry: ${String(RETRY_MS)}\n\n`)
  }

  /** Waiting for the socket to drain: write nothing until `onDrain`. */
  get blocked(): boolean {
    return this.#blocked
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Open and not waiting for the socket to drain. */
  writable(): boolean {
    return !this.#closed && !this.#blocked
  }

  /** Write; once the socket's buffer is full, wait for `drain` (and cut a client that never drains). */
  write(text: string): void {
    if (this.#closed || this.#res.write(text)) return
    this.#blocked = true
    clearTimeout(this.#stuck)
    this.#stuck = setTimeout(() => this.#res.destroy(), this.#opts.stuckMs)
  }

  /** End the stream after what was written (a client that does not take it is still cut). */
  end(): void {
    if (this.#closed) return
    this.#res.end()
    this.#stop()
  }

  #stop(): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#keepAlive)
    // Ended while blocked, the stuck timer stays: it cuts a client that never takes the last bytes.
    if (!this.#blocked) clearTimeout(this.#stuck)
    this.#opts.onClose()
  }
}
