/**
 * The broker's sockets: MQTT over TCP, over TLS (mqtts), and over WebSocket (ws, or wss when TLS
 * is configured). Every accepted socket passes the connection gate first (per-address cap and
 * CONNECT deadline, broker/connection-gate.ts). Each returns its port and a close step that also
 * drops open connections.
 */
import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Socket } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { Duplex } from 'node:stream'
import type { IncomingMessage } from 'node:http'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Logger } from 'pino'
import { normalizeAddress, type ConnectionGate, type Ticket } from './connection-gate.js'

/** A stream carrying one MQTT connection, with what the broker needs to know of it. */
export interface Connection {
  readonly ticket: Ticket
  /** Bytes written to the stream and not yet handed to the network. */
  outgoingBytes(): number
}

export type Handle = (stream: Duplex, connection: Connection, req?: IncomingMessage) => void

export interface TlsFiles {
  readonly cert: Buffer
  readonly key: Buffer
}

export interface Listening {
  readonly port: number
  close(): Promise<void>
}

interface Listenable {
  listen(port: number, host: string, cb: () => void): unknown
  once(event: 'error', cb: (err: Error) => void): unknown
  off(event: 'error', cb: (err: Error) => void): unknown
  address(): AddressInfo | string | null
  close(cb: () => void): unknown
  on(event: 'connection', cb: (socket: Socket) => void): unknown
}

/** A ticket for a stream the gate has not seen (cannot happen; kept total for the types). */
function looseTicket(stream: { readonly remoteAddress?: string | undefined }): Ticket {
  return { address: normalizeAddress(stream.remoteAddress), established: () => undefined }
}

/** Where a listener listens, and what it hands the connections it admits to. */
export interface ListenOn {
  readonly handle: Handle
  readonly gate: ConnectionGate
  readonly port: number
  readonly host: string
}

async function listen(
  server: Listenable,
  { port, host, gate }: ListenOn,
  /** Called with each admitted raw socket (plain TCP only; TLS and HTTP servers take their own). */
  onAdmitted?: (socket: Socket) => void,
): Promise<Listening> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket) => {
    if (!gate.admit(socket)) return
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    onAdmitted?.(socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address()
  return {
    port: typeof address === 'object' && address !== null ? address.port : 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}

export function listenTcp(on: ListenOn): Promise<Listening> {
  const { handle, gate } = on
  // Small packets go out at once (TCP_NODELAY): no hop waits for a delayed ACK.
  return listen(createNetServer({ noDelay: true }), on, (socket) => {
    handle(socket, {
      ticket: gate.ticketFor(socket) ?? looseTicket(socket),
      outgoingBytes: () => socket.writableLength,
    })
  })
}

export interface ListenTls extends ListenOn {
  readonly tls: TlsFiles
  /** A TLS handshake not done by then is dropped (the gate's deadline covers it as well). */
  readonly handshakeTimeoutMs: number
}

export function listenTls(on: ListenTls): Promise<Listening> {
  const { handle, gate, tls, handshakeTimeoutMs } = on
  const server = createTlsServer(
    { cert: tls.cert, key: tls.key, handshakeTimeout: handshakeTimeoutMs },
    (socket: TLSSocket) => {
      socket.setNoDelay(true)
      handle(socket, {
        ticket: gate.ticketFor(socket) ?? looseTicket(socket),
        outgoingBytes: () => socket.writableLength,
      })
    },
  )
  return listen(server, on)
}

export interface ListenWebSocket extends ListenOn {
  readonly tls: TlsFiles | null
  /** Largest WebSocket message accepted (null: the ws default). */
  readonly maxPayload: number | null
  readonly log: Logger
}

export async function listenWebSocket(on: ListenWebSocket): Promise<Listening> {
  const { handle, gate, tls, maxPayload, log } = on
  const reply = (_req: IncomingMessage, res: import('node:http').ServerResponse): void => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n')
  }
  const http = tls
    ? createHttpsServer({ cert: tls.cert, key: tls.key }, reply)
    : createHttpServer(reply)
  const wss = new WebSocketServer({ server: http, ...(maxPayload === null ? {} : { maxPayload }) })
  wss.on('connection', (socket, req) => {
    const stream = createWebSocketStream(socket)
    stream.on('error', (err) => log.debug({ err }, 'websocket stream error'))
    handle(
      stream,
      {
        ticket: gate.ticketFor(req.socket) ?? looseTicket(req.socket),
        // What the stream holds for ws, and what ws holds for the socket.
        outgoingBytes: () => stream.writableLength + socket.bufferedAmount,
      },
      req,
    )
  })
  const listening = await listen(http, on)
  return {
    port: listening.port,
    close: async () => {
      for (const client of wss.clients) client.terminate()
      wss.close()
      await listening.close()
    },
  }
}
