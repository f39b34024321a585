/**
 * Clients that misbehave on purpose, over raw TCP from chosen loopback addresses, and a view of
 * the server side of each connection (how many bytes the gateway read from it), taken from Node's
 * `net.server.socket` diagnostics channel.
 */
import diagnostics from 'node:diagnostics_channel'
import { request } from 'node:http'
import type { Socket } from 'node:net'
import { onTestFinished } from 'vitest'
import { connectFrom } from './loopback-addresses.js'

export interface ServerSockets {
  /** Sockets accepted and kept so far from `ip`. */
  acceptedFrom(ip: string): number
  /**
   * Bytes read from each socket destroyed by the server's own `connection` listeners (the
   * channel reports a socket after them, so its address is gone by then).
   */
  readonly destroyedAtAccept: number[]
  /** Bytes the server had read from the connection whose client end is `ip:port`, once closed. */
  readFrom(ip: string, port: number): number | undefined
}

/** Watch the server sockets of the HTTP server listening on `url`'s port. */
export function watchServerSockets(url: string): ServerSockets {
  const port = Number(new URL(url).port)
  const accepted = new Map<string, number>()
  const read = new Map<string, number>()
  const destroyedAtAccept: number[] = []
  const onSocket = (message: unknown): void => {
    const { socket } = message as { socket: Socket }
    if (socket.destroyed) {
      // Accepted by some server and destroyed at once; only the gateway here destroys any so.
      destroyedAtAccept.push(socket.bytesRead)
      return
    }
    if (socket.localPort !== port) return
    const ip = (socket.remoteAddress ?? '').replace(/^::ffff:/, '')
    const key = `${ip}:${String(socket.remotePort)}`
    accepted.set(ip, (accepted.get(ip) ?? 0) + 1)
    socket.once('close', () => read.set(key, socket.bytesRead))
  }
  diagnostics.subscribe('net.server.socket', onSocket)
  onTestFinished(() => {
    diagnostics.unsubscribe('net.server.socket', onSocket)
  })
  return {
    destroyedAtAccept,
    acceptedFrom: (ip) => accepted.get(ip) ?? 0,
    readFrom: (ip, clientPort) => read.get(`${ip}:${String(clientPort)}`),
  }
}

export interface Hostile {
  readonly ip: string
  readonly port: number
  /** Resolves when the client has sent all it meant to, or the connection ended first. */
  readonly sent: Promise<void>
  /** Resolves with everything the server answered, once the connection has closed. */
  readonly closed: Promise<string>
  /** Has the connection closed? */
  readonly isClosed: () => boolean
}

/** One body chunk, shared by every hostile client (so the test itself holds almost nothing). */
const CHUNK = Buffer.alloc(64 * 1024, 0x20)

/**
 * Connect from `ip`, send `head`, then up to `bodyBytes` of body (none when `send` is only the
 * head) as fast as the connection takes it (never more than one chunk queued), then go quiet
 * without closing.
 */
export async function hostile(
  url: string,
  ip: string,
  send: string | { readonly head: string; readonly bodyBytes: number },
): Promise<Hostile> {
  const { head, bodyBytes } = typeof send === 'string' ? { head: send, bodyBytes: 0 } : send
  const socket = await connectFrom(url, ip)
  onTestFinished(() => {
    socket.destroy()
  })
  let answer = ''
  let written = 0
  let ended = false
  socket.on('data', (chunk: Buffer) => (answer += chunk.toString('utf8')))
  socket.on('error', () => undefined) // EPIPE / ECONNRESET: the server closed on us
  const closed = new Promise<string>((resolve) => {
    socket.once('close', () => {
      ended = true
      resolve(answer)
    })
  })
  const sent = new Promise<void>((resolve) => {
    socket.once('close', () => resolve())
    const pump = (): void => {
      while (!ended && written < bodyBytes) {
        const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, bodyBytes - written))
        written += chunk.length
        if (!socket.write(chunk)) {
          socket.once('drain', pump)
          return
        }
      }
      resolve()
    }
    socket.write(head, () => undefined)
    pump()
  })
  return { ip, port: socket.localPort ?? 0, sent, closed, isClosed: () => ended }
}

export interface Reply {
  readonly status: number
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: string
}

/** One HTTP request from `localAddress` (a new connection), its whole reply. */
export function requestFrom(
  localAddress: string,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        localAddress,
        headers: options.headers ?? {},
        agent: false,
      },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (body += chunk))
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
        })
      },
    )
    req.on('error', reject)
    req.end(options.body)
  })
}
