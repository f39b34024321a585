/**
 * The progress stage of the PC app's `run_heygem_online` (docs/real-services.md §2): the WebSocket
 * `/ws/progress/{task_id}` as the app's `websockets` client reads it, the fallback polling of
 * `/api/heygem/progress`, and the text the app shows for each update.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket, { type RawData } from 'ws'
import {
  pyEqualsZero,
  pyGet,
  pyGreaterThanZero,
  pyJson,
  pyRequest,
  pyStr,
  pyTruthy,
  raiseForStatus,
  type PyResponse,
} from './pc-app-requests.js'

/** A `gr.Error`: the text the app shows the user in its error box. */
export class GrError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'GrError'
  }
}

/** What the progress stage needs from the run: where to ask, and where to record. */
export interface ProgressSession {
  readonly serverUrl: string
  readonly headers: Readonly<Record<string, string>>
  readonly apiSecret: string
  readonly taskId: string
  readonly pollIntervalMs: number
  readonly maxWaitS: number
  /** Seconds since the function started (Python's `time.time() - t0`). */
  elapsedS(): number
  display(text: string): void
  call(what: string): void
}

type Outcome = 'done' | 'error' | 'continue'

/** `requests.get(f"{server}{path}", params={"task_id": …})` then `raise_for_status()`, recorded. */
export async function getForTask(
  s: ProgressSession,
  path: string,
  timeoutS: number,
): Promise<PyResponse> {
  s.call(`GET ${path}`)
  const r = await pyRequest({
    method: 'GET',
    url: `${s.serverUrl}${path}`,
    params: { task_id: s.taskId },
    headers: s.headers,
    timeoutS,
  })
  raiseForStatus(r)
  return r
}

/** The app's `_process_progress_update`: show one update; may raise as Python would. */
export function showUpdate(s: ProgressSession, pdata: unknown, elapsed: number): Outcome {
  const status = pyGet(pdata, 'status', '')
  const pct = pyGet(pdata, 'progress', 0)
  const msg = pyGet(pdata, 'message', '')
  const queuePos = pyGet(pdata, 'queue_position', 0)
  if (status === 'queued') {
    const fakePct = Math.min(25, 12 + Math.trunc(elapsed / 5))
    s.display(`排队中 (第${pyStr(queuePos)}位)... ${fakePct}%`)
  } else if (status === 'processing' || status === 'synthesizing' || status === 'encoding') {
    const safePct = pyGreaterThanZero(pct)
      ? Math.max(12, Math.min(95, Number(pct)))
      : Math.min(88, 25 + Math.trunc((63 * elapsed) / (elapsed + 120)))
    const displayMsg = pyTruthy(msg) ? pyStr(msg) : '合成处理中...'
    s.display(`${displayMsg} (${safePct}%)`)
  } else if (status === 'done') {
    s.display('下载合成结果...')
    return 'done'
  } else if (status === 'error') {
    return 'error'
  }
  return 'continue'
}

function failure(pdata: unknown): GrError {
  return new GrError(`服务器合成失败: ${pyStr(pyGet(pdata, 'error', '未知错误'))}`)
}

function timedOut(elapsed: number): GrError {
  return new GrError(`合成超时 (${Math.trunc(elapsed)}s)，请检查服务器状态`)
}

/** `_poll_progress_ws`: true once done; false to fall back to polling; throws what the user sees. */
export async function progressOverWs(s: ProgressSession): Promise<boolean> {
  const base = s.serverUrl.replaceAll('http://', 'ws://').replaceAll('https://', 'wss://')
  // The app appends the secret as it is, unencoded.
  const url = `${base}/ws/progress/${s.taskId}${s.apiSecret ? `?token=${s.apiSecret}` : ''}`
  s.call(`WS /ws/progress/${s.taskId}`)
  let socket: WebSocket
  try {
    // websockets' defaults: open_timeout=5 here, max_size 1 MiB.
    socket = new WebSocket(url, { handshakeTimeout: 5_000, maxPayload: 2 ** 20 })
  } catch {
    return false
  }
  const inbox = new Inbox(socket)
  try {
    await inbox.opened
    for (;;) {
      const elapsed = s.elapsedS()
      if (elapsed > s.maxWaitS) throw timedOut(elapsed)
      const raw = await inbox.next(30_000)
      if (raw === null) continue
      const data: unknown = JSON.parse(raw)
      if (!pyEqualsZero(pyGet(data, 'code', null))) {
        throw new GrError(`服务器错误: ${pyStr(pyGet(data, 'msg', '未知错误'))}`)
      }
      const pdata = pyGet(data, 'data', {})
      const outcome = showUpdate(s, pdata, elapsed)
      if (outcome === 'done') return true
      if (outcome === 'error') throw failure(pdata)
    }
  } catch (err) {
    if (err instanceof GrError) throw err
    return false // a refused upgrade, a close before the end, a bad message: poll instead
  } finally {
    inbox.dispose()
  }
}

/** `_poll_progress_http`: every 2 s until done; a failed request is retried; throws on failure. */
export async function progressByPolling(s: ProgressSession): Promise<void> {
  for (;;) {
    const elapsed = s.elapsedS()
    if (elapsed > s.maxWaitS) throw timedOut(elapsed)
    let pdata: unknown
    try {
      const r = await getForTask(s, '/api/heygem/progress', 15)
      pdata = pyGet(await pyJson(r), 'data', {})
    } catch {
      await sleep(s.pollIntervalMs)
      continue
    }
    const outcome = showUpdate(s, pdata, elapsed)
    if (outcome === 'done') return
    if (outcome === 'error') throw failure(pdata)
    await sleep(s.pollIntervalMs)
  }
}

function text(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8')
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8')
  return Buffer.from(data).toString('utf8')
}

/** Messages of one socket, read one at a time like `await ws.recv()`. */
class Inbox {
  readonly opened: Promise<void>
  readonly #socket: WebSocket
  readonly #messages: string[] = []
  #ended: Error | null = null
  #wake: (() => void) | null = null

  constructor(socket: WebSocket) {
    this.#socket = socket
    this.opened = new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
      socket.once('close', () => reject(new Error('closed during the handshake')))
    })
    this.opened.catch(() => undefined)
    socket.on('message', (data) => {
      this.#messages.push(text(data))
      this.#wake?.()
    })
    socket.on('error', (err) => {
      this.#ended ??= err
      this.#wake?.()
    })
    socket.on('close', (code) => {
      this.#ended ??= new Error(`connection closed (${code})`)
      this.#wake?.()
    })
  }

  /** The next message; null after `timeoutMs` without one; throws once the socket has closed. */
  async next(timeoutMs: number): Promise<string | null> {
    for (;;) {
      const message = this.#messages.shift()
      if (message !== undefined) return message
      if (this.#ended) throw this.#ended
      const woke = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          resolve(false)
        }, timeoutMs)
        this.#wake = () => {
          clearTimeout(timer)
          resolve(true)
        }
      })
      this.#wake = null
      if (!woke) return null
    }
  }

  /** Leave the `async with`: close, and cut the socket if the close takes more than 3 s. */
  dispose(): void {
    const socket = this.#socket
    socket.on('error', () => undefined)
    if (socket.readyState === WebSocket.CLOSED) return
    if (socket.readyState === WebSocket.CONNECTING) {
      socket.terminate()
      return
    }
    socket.close()
    setTimeout(() => {
      socket.terminate()
    }, 3_000).unref()
  }
}
