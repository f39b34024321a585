/**
 * A server-sent events reader over a real socket (node:http), as a dashboard or EventSource
 * would read `GET /api/relay/events`: it parses `id:`/`data:` frames and keeps every message.
 */
import { request, type IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { onTestFinished } from 'vitest'

export interface SseMessage {
  readonly id: string | null
  /** The `event:` name; null for an unnamed (`message`) event. */
  readonly event: string | null
  readonly data: string
}

export interface SseReader {
  readonly status: number
  readonly headers: IncomingMessage['headers']
  readonly messages: SseMessage[]
  /** The body of a refused request (not an event stream). */
  readonly body: () => string
  readonly closed: () => boolean
  /** Resolves when the server has ended the response (a refusal, or a cut stream). */
  readonly ended: Promise<void>
  close(): void
}

export async function openSse(
  url: string,
  opts: { readonly token?: string; readonly lastEventId?: string } = {},
): Promise<SseReader> {
  const messages: SseMessage[] = []
  let text = ''
  let pending = ''
  let closed = false
  const req = request(url, {
    headers: {
      Accept: 'text/event-stream',
      ...(opts.token === undefined ? {} : { Authorization: `Bearer ${opts.token}` }),
      ...(opts.lastEventId === undefined ? {} : { 'Last-Event-ID': opts.lastEventId }),
    },
  })
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
    req.end()
  })
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    text += chunk
    pending += chunk
    let start = 0
    for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n', start)) {
      const block = pending.slice(start, end)
      start = end + 2
      let id: string | null = null
      let event: string | null = null
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) id = line.slice(4)
        else if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data.push(line.slice(6))
      }
      if (data.length > 0) messages.push({ id, event, data: data.join('\n') })
    }
    pending = pending.slice(start)
  })
  const ended = new Promise<void>((resolve) => {
    res.on('close', () => {
      closed = true
      resolve()
    })
  })
  res.on('error', () => undefined)
  const reader: SseReader = {
    status: res.statusCode ?? 0,
    headers: res.headers,
    messages,
    body: () => text,
    closed: () => closed,
    ended,
    close: () => {
      req.destroy()
      res.destroy()
    },
  }
  onTestFinished(() => {
    reader.close()
  })
  return reader
}

/** An event-stream client that sends its request and then reads nothing (a stuck reader). */
export interface StalledStream {
  /** performance.now() when it stopped reading. */
  readonly since: number
  /** Whether the server has closed it (known only once it reads again: see `resume`). */
  readonly cut: () => boolean
  /** Read again: a connection the server closed is noticed now. */
  resume(): void
}

/** Connects to `url`'s port, pauses its socket, then writes the raw `request` (no reading). */
export async function stalledStream(url: string, rawRequest: string): Promise<StalledStream> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  onTestFinished(() => {
    socket.destroy()
  })
  let cut = false
  socket.on('close', () => {
    cut = true
  })
  socket.on('error', () => undefined)
  await new Promise<void>((resolve) => socket.once('connect', resolve))
  socket.pause() // reads nothing from here on
  const since = performance.now()
  socket.write(rawRequest)
  return { since, cut: () => cut, resume: () => socket.resume() }
}
