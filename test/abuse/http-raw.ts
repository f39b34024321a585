/**
 * HTTP for the abuse suite at the byte level: honest requests from 127.0.0.1 (timed, keep-alive)
 * and raw hostile sockets bound to another loopback address (Linux routes all of 127/8 to lo), that
 * write what they like and record what the server answered and when it closed them.
 */
import { Agent, request } from 'node:http'
import { connect, type Socket } from 'node:net'

export interface Reply {
  readonly status: number
  readonly headers: Record<string, string | string[] | undefined>
  readonly text: string
  readonly json: Record<string, unknown> | null
  readonly ms: number
}

export interface HttpCall {
  readonly method?: string
  readonly path: string
  readonly body?: Buffer | string | object
  readonly headers?: Record<string, string>
  /** Source address (default 127.0.0.1). */
  readonly localAddress?: string
  readonly timeoutMs?: number
  readonly agent?: Agent | false
}

/** One request; rejects on no answer within the timeout (default 15 s). */
export function httpCall(port: number, call: HttpCall): Promise<Reply> {
  const started = performance.now()
  const raw =
    call.body === undefined
      ? undefined
      : Buffer.isBuffer(call.body) || typeof call.body === 'string'
        ? Buffer.from(call.body)
        : Buffer.from(JSON.stringify(call.body))
  const headers: Record<string, string> = {
    ...(raw && !Buffer.isBuffer(call.body) && typeof call.body === 'object'
      ? { 'content-type': 'application/json' }
      : {}),
    ...(raw ? { 'content-length': String(raw.length) } : {}),
    ...call.headers,
  }
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: call.method ?? (raw ? 'POST' : 'GET'),
        path: call.path,
        headers,
        localAddress: call.localAddress ?? '127.0.0.1',
        agent: call.agent ?? false,
        timeout: call.timeoutMs ?? 15_000,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString()
          let json: Record<string, unknown> | null = null
          try {
            const value: unknown = JSON.parse(text)
            if (typeof value === 'object' && value !== null) json = value as Record<string, unknown>
          } catch {
            json = null
          }
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json,
            ms: performance.now() - started,
          })
        })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer to ${call.path} in time`)))
    req.on('error', reject)
    req.end(raw)
  })
}

/** The `data` object of an envelope, or {}. */
export function dataOf(reply: Reply): Record<string, unknown> {
  const data = reply.json?.data
  return typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {}
}

export interface RawSocket {
  readonly socket: Socket
  /** Everything the server sent so far. */
  readonly received: () => string
  /** Resolves with the ms from connect to close (by either side), or the error. */
  readonly closed: Promise<number>
  /** True once the server closed or reset the connection (not us). */
  readonly closedByServer: () => boolean
  destroy(): void
}

/** A raw TCP connection from `localAddress`; `onConnect` writes whatever the attack sends. */
export function rawSocket(
  port: number,
  localAddress: string,
  onConnect: (socket: Socket) => void = () => undefined,
): RawSocket {
  const started = performance.now()
  const socket = connect({ host: '127.0.0.1', port, localAddress })
  socket.setNoDelay(true)
  let text = ''
  let byUs = false
  let byServer = false
  socket.on('data', (chunk: Buffer) => {
    if (text.length < 64_000) text += chunk.toString('latin1')
  })
  socket.on('connect', () => onConnect(socket))
  const closed = new Promise<number>((resolve) => {
    socket.on('error', () => undefined)
    socket.on('end', () => {
      if (!byUs) byServer = true
      socket.end()
    })
    socket.on('close', () => {
      if (!byUs) byServer = true
      resolve(performance.now() - started)
    })
  })
  return {
    socket,
    received: () => text,
    closed,
    closedByServer: () => byServer,
    destroy() {
      byUs = true
      socket.destroy()
    },
  }
}

/** 127.0.0.2 … 127.0.0.254 in turn: the `i`th hostile client address. */
export function hostileAddress(i: number): string {
  return `127.0.0.${String(2 + (i % 253))}`
}

/** The status code of the first response in raw bytes, or 0. */
export function rawStatus(text: string): number {
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(text)
  return match ? Number(match[1]) : 0
}

/** Resolve after `ms` or when `promise` settles, whichever first: true if it settled. */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms)
  })
  const done = promise.then(
    () => true,
    () => true,
  )
  const result = await Promise.race([done, timeout])
  clearTimeout(timer)
  return result
}
