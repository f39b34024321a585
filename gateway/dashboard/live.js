/**
 * The admin event stream (`GET /api/relay/events`, server-sent events) read with fetch and a
 * ReadableStream: EventSource cannot send the Authorization header. After a cut it reconnects
 * with `Last-Event-ID`, so no event is missed or repeated.
 */
import { authHeaders } from './api.js'

const EVENTS_PATH = '/api/relay/events'
const MAX_RETRY_MS = 30_000

/**
 * Start reading. `onEvent(event)` for each task event, `onStatus(word)` with `connecting`,
 * `live`, `retrying` or `refused` (a bad token: it stops). Returns `stop()`.
 */
export function followEvents({ onEvent, onStatus }) {
  const abort = new AbortController()
  let lastId = null
  let retryMs = 2_000
  let failures = 0

  const frame = (block) => {
    let id = null
    const data = []
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      let value = colon < 0 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'id') id = value
      else if (field === 'data') data.push(value)
      else if (field === 'retry' && /^\d+$/.test(value)) retryMs = Number(value)
    }
    if (id !== null) lastId = id
    if (data.length === 0) return
    try {
      onEvent(JSON.parse(data.join('\n')))
    } catch (err) {
      console.warn('dashboard: event not handled', err)
    }
  }

  const readOnce = async () => {
    onStatus('connecting')
    const headers = authHeaders({ Accept: 'text/event-stream' })
    if (lastId !== null) headers['Last-Event-ID'] = lastId
    const res = await fetch(EVENTS_PATH, { headers, signal: abort.signal, cache: 'no-store' })
    if (res.status === 401 || res.status === 403) return 'refused'
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`)
    onStatus('live')
    failures = 0
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
    let pending = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return 'ended'
      pending = (pending + value).replaceAll('\r\n', '\n')
      let end = pending.indexOf('\n\n')
      while (end >= 0) {
        frame(pending.slice(0, end))
        pending = pending.slice(end + 2)
        end = pending.indexOf('\n\n')
      }
    }
  }

  const loop = async () => {
    while (!abort.signal.aborted) {
      let outcome
      try {
        outcome = await readOnce()
      } catch {
        outcome = 'failed'
      }
      if (abort.signal.aborted) return
      if (outcome === 'refused') {
        onStatus('refused')
        return
      }
      failures += 1
      onStatus('retrying')
      const wait = Math.min(MAX_RETRY_MS, retryMs * Math.min(failures, 8))
      await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }

  void loop()
  return () => abort.abort()
}
