/**
 * At most `max` open connections per client address on the HTTP server (docs/design.md §7,
 * `HTTP_MAX_CONNECTIONS_PER_IP`), upgraded WebSockets (`/ws/progress`) included: a socket is
 * counted from its accept to its close, whatever it turns into. A connection over the cap is
 * destroyed as it is accepted, before any byte of it is read, and costs no more than that.
 */
import type { Server, Socket } from 'node:net'
import type { Logger } from 'pino'
import { clientAddress } from './caller-address.js'

export interface ConnectionCap {
  /** Open connections of `address` (as `clientAddress` spells it). */
  countOf(address: string): number
  /** Addresses with at least one open connection. */
  readonly addresses: number
  /** Stop counting (the server is closing). */
  close(): void
}

/** How often, at most, refused connections are logged (a flood must not flood the log too). */
const LOG_EVERY_MS = 10_000

export interface ConnectionCapOptions {
  readonly max: number
  readonly log: Logger
  /** Addresses not counted: trusted proxies, whose callers all share their connections. */
  readonly exempt?: (address: string) => boolean
}

export function capConnectionsPerAddress(server: Server, o: ConnectionCapOptions): ConnectionCap {
  const { max, log } = o
  const exempt = o.exempt ?? (() => false)
  const open = new Map<string, number>()
  let refused = 0
  let loggedAt = Number.NEGATIVE_INFINITY

  const onConnection = (socket: Socket): void => {
    const address = clientAddress(socket)
    if (exempt(address)) return
    const count = open.get(address) ?? 0
    if (count >= max) {
      // Nothing has been read yet: reads start on a later turn of the event loop.
      socket.destroy()
      refused += 1
      const now = performance.now()
      if (now - loggedAt >= LOG_EVERY_MS) {
        log.warn({ ip: address, max, refused }, 'HTTP connections over the per-address cap closed')
        loggedAt = now
        refused = 0
      }
      return
    }
    open.set(address, count + 1)
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1
      if (left <= 0) open.delete(address)
      else open.set(address, left)
    })
  }
  // Ahead of the HTTP server's own listener, so a refused socket never gets a parser.
  server.prependListener('connection', onConnection)

  return {
    countOf: (address) => open.get(address) ?? 0,
    get addresses() {
      return open.size
    },
    close() {
      server.off('connection', onConnection)
    },
  }
}
