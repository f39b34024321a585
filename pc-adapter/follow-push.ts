/**
 * Follow a task by push: the gateway's event stream (`GET /api/heygem/task/events`), each event
 * `status` a TaskStatusData. A cut stream is reopened with `Last-Event-ID`, so no change is missed
 * or shown twice; a stream that goes quiet (no heartbeat) counts as cut. When push is not to be
 * had (an older gateway or a proxy answering 404, any refusal, a reply that is no event stream,
 * or the stream failing again and again) this says so by resolving null: the caller polls.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { HttpError, readEnvelope } from '../lib/http-client.js'
import { TASK_EVENT_STATUS, TASK_PATHS, TaskStatusData, isTerminal } from '../protocol/index.js'
import type { RelayClient } from './client.js'
import { sseMessages } from './sse-reader.js'
import { z } from 'zod'

export interface PushOptions {
  /** Every status the stream brings, in order. */
  readonly onStatus: (status: TaskStatusData) => void
  readonly signal?: AbortSignal | undefined
  /** Failed connections in a row before giving up on push; default 3. */
  readonly maxFailures?: number
  /** Wait before reconnecting (doubling, with jitter); default 1000 ms. */
  readonly retryMs?: number
  /** Nothing at all (not even a heartbeat) for this long: the stream is taken as cut; 30 s. */
  readonly silenceMs?: number
}

/** The task's terminal status, followed by push; null when push is unavailable. */
export async function followByPush(
  client: RelayClient,
  taskId: string,
  opts: PushOptions,
): Promise<TaskStatusData | null> {
  const maxFailures = opts.maxFailures ?? 3
  const retryMs = opts.retryMs ?? 1_000
  let lastEventId: string | null = null
  let failures = 0
  for (;;) {
    opts.signal?.throwIfAborted()
    const connection = new AbortController()
    const signal = opts.signal
      ? AbortSignal.any([opts.signal, connection.signal])
      : connection.signal
    let quiet: NodeJS.Timeout | undefined
    const heard = (): void => {
      clearTimeout(quiet)
      quiet = setTimeout(() => connection.abort(), opts.silenceMs ?? 30_000)
    }
    heard()
    try {
      const body = await openTaskEvents(client, taskId, { lastEventId, signal })
      for await (const message of sseMessages(body, { onChunk: heard })) {
        if (message.id !== null) lastEventId = message.id
        if (message.event !== TASK_EVENT_STATUS) continue
        const status = TaskStatusData.safeParse(parseJson(message.data))
        // A gateway that speaks another shape: polling reads what it says.
        if (!status.success) return null
        failures = 0
        opts.onStatus(status.data)
        if (isTerminal(status.data.status)) return status.data
      }
    } catch (err) {
      if (opts.signal?.aborted === true) throw err
      // Refused, or not an event stream: push is not to be had here.
      if (err instanceof HttpError && err.status !== 0 && err.status < 500) return null
    } finally {
      clearTimeout(quiet)
      connection.abort()
    }
    // Cut, ended early, quiet, or a server fault: again from the last id, a few times.
    failures++
    if (failures >= maxFailures) return null
    const wait = retryMs * 2 ** (failures - 1) * (0.5 + Math.random() / 2)
    await sleep(wait, undefined, opts.signal ? { signal: opts.signal } : {})
  }
}

/** The stream's body; HttpError for a refusal or a reply that is no event stream. */
async function openTaskEvents(
  client: RelayClient,
  taskId: string,
  opts: { readonly lastEventId: string | null; readonly signal: AbortSignal },
): Promise<ReadableStream<Uint8Array>> {
  const path = `${TASK_PATHS.events}?${new URLSearchParams({ task_id: taskId }).toString()}`
  const headers: Record<string, string> = { accept: 'text/event-stream' }
  if (opts.lastEventId !== null) headers['last-event-id'] = opts.lastEventId
  const res = await client.get(path, { headers, signal: opts.signal })
  const type = res.headers.get('content-type') ?? ''
  if (res.status === 200 && res.body !== null && type.startsWith('text/event-stream')) {
    return res.body
  }
  const text = await res.text()
  const url = client.url(path)
  if (res.status >= 400)
    readEnvelope(url, { status: res.status, body: parseJson(text) }, z.unknown())
  throw new HttpError(`not an event stream: ${url}`, {
    status: res.status,
    code: null,
    body: text,
  })
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
