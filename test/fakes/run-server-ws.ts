/**
 * run_server's WebSocket `GET /ws/progress/{task_id}?token=` (flask-sock): a bad token gets one
 * `{"code": 401, "msg": "鉴权失败"}`, an unknown task one `{"code": 404, …}`; otherwise the progress
 * data is checked every second (`intervalMs`) and pushed as `{"code": 0, "data": …}` whenever
 * (status, progress, current_frame) changed, and always the terminal one, after which it closes.
 * Frames are Python's `json.dumps` text. Other upgrade paths get Werkzeug's 404.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { htmlErrorPage, pythonDumps, type Json } from './flask-reply.js'
import { pathOf, queryArg } from './flask-request.js'
import type { RunServerContext } from './run-server-context.js'

const WS_PATH = /^\/ws\/progress\/([^/]+)$/

export interface ProgressSocketOptions {
  readonly secret: string
  readonly intervalMs: number
  /** The context of the process that is up now. */
  readonly context: () => RunServerContext | null
}

function refuseUpgrade(socket: Duplex): void {
  const body = htmlErrorPage(404)
  socket.end(
    `HTTP/1.1 404 NOT FOUND\r\nContent-Type: text/html; charset=utf-8\r\n` +
      `Content-Length: ${String(Buffer.byteLength(body))}\r\nConnection: close\r\n\r\n${body}`,
  )
}

function send(ws: WebSocket, message: Json): void {
  ws.send(pythonDumps(message))
}

function follow(
  ws: WebSocket,
  taskId: string,
  on: { ctx: RunServerContext; intervalMs: number },
): void {
  const { ctx, intervalMs } = on
  let last: string | null = null
  let timer: NodeJS.Timeout | null = null
  const tick = (): void => {
    timer = null
    if (ws.readyState !== ws.OPEN) return
    const view = ctx.tasks.view(taskId)
    if (!view) {
      send(ws, { code: 404, msg: '任务已被清理' })
      ws.close()
      return
    }
    const terminal = view.status === 'done' || view.status === 'error'
    const key = `${view.status}|${String(view.progress)}|${String(view.current_frame)}`
    if (terminal || key !== last) {
      send(ws, { code: 0, data: { ...view, queue: { ...view.queue } } })
      last = key
    }
    if (terminal) {
      ws.close()
      return
    }
    timer = setTimeout(tick, intervalMs)
  }
  ws.on('close', () => {
    if (timer !== null) clearTimeout(timer)
  })
  tick()
}

/** Serve the progress WebSocket on this HTTP server; returns a function that drops every client. */
export function attachProgressSocket(server: Server, options: ProgressSocketOptions): () => void {
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined)
    let taskId: string
    try {
      const match = WS_PATH.exec(pathOf(req))
      if (!match?.[1]) throw new Error('not the progress path')
      taskId = decodeURIComponent(match[1])
    } catch {
      refuseUpgrade(socket)
      return
    }
    const ctx = options.context()
    if (ctx === null) {
      socket.destroy()
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => undefined)
      if (options.secret !== '' && queryArg(req, 'token') !== options.secret) {
        send(ws, { code: 401, msg: '鉴权失败' })
        ws.close()
        return
      }
      if (!ctx.tasks.view(taskId)) {
        send(ws, { code: 404, msg: `任务 ${taskId} 不存在` })
        ws.close()
        return
      }
      ctx.events.ask(taskId, 'progress')
      follow(ws, taskId, { ctx, intervalMs: options.intervalMs })
    })
  })
  return () => {
    for (const client of wss.clients) client.terminate()
    wss.close()
  }
}
