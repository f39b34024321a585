/**
 * The MQTT broker: Aedes over TCP and WebSocket. Embedded in the gateway by default, or run alone
 * (`npm run broker`). Sessions with clean-session=false and QoS 1 are kept by Aedes' persistence.
 */
import { mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net'
import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import type { Logger } from 'pino'
import { Closer } from '../lib/lifecycle.js'
import { SqlitePersistence } from './sqlite-persistence.js'

export interface BrokerConfig {
  readonly host: string
  /** MQTT over TCP; 0 picks a free port. */
  readonly port: number
  /** MQTT over WebSocket (MQTT Explorer, browsers); null turns it off, 0 picks a free port. */
  readonly wsPort: number | null
  /**
   * SQLite file for sessions, queued QoS 1 messages, retained messages and wills; null keeps them
   * in memory (lost on restart).
   */
  readonly persistencePath: string | null
  /**
   * Aedes' broker heartbeat (default 60 s). Wills of clients that were connected when a broker
   * died are published by its successor after 4 heartbeats.
   */
  readonly heartbeatMs?: number
}

export interface BrokerDeps {
  readonly log: Logger
}

export interface BrokerHandle {
  /** `mqtt://host:port` */
  readonly url: string
  /** `ws://host:port` or null when WebSocket is off. */
  readonly wsUrl: string | null
  readonly aedes: Aedes
  close(): Promise<void>
}

function listen(server: Server | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

export async function startBroker(config: BrokerConfig, deps: BrokerDeps): Promise<BrokerHandle> {
  const log = deps.log.child({ component: 'broker' })
  const closer = new Closer()
  try {
    if (config.persistencePath !== null)
      await mkdir(dirname(config.persistencePath), { recursive: true })
    const persistence =
      config.persistencePath === null ? undefined : new SqlitePersistence(config.persistencePath)
    if (persistence) closer.add(() => persistence.destroy())
    const aedes = await Aedes.createBroker({
      heartbeatInterval: config.heartbeatMs ?? 60_000,
      ...(persistence ? { persistence } : {}),
    })
    closer.add(() => new Promise<void>((resolve) => aedes.close(() => resolve())))
    aedes.on('client', (client) => log.debug({ clientId: client.id }, 'client connected'))
    aedes.on('clientDisconnect', (client) => log.debug({ clientId: client.id }, 'client gone'))
    aedes.on('clientError', (client, err) =>
      log.debug({ clientId: client.id, err }, 'client error'),
    )
    aedes.on('connectionError', (_client, err) => log.debug({ err }, 'connection error'))
    aedes.on('keepaliveTimeout', (client) =>
      log.info({ clientId: client.id }, 'client keep-alive expired'),
    )

    const tcp = createNetServer((socket) => aedes.handle(socket))
    const sockets = new Set<import('node:net').Socket>()
    tcp.on('connection', (socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    const port = await listen(tcp, config.port, config.host)
    closer.add(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy()
          tcp.close(() => resolve())
        }),
    )
    const url = `mqtt://${urlHost(config.host)}:${port}`

    let wsUrl: string | null = null
    if (config.wsPort !== null) {
      const http = createHttpServer((_req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain' }).end('MQTT over WebSocket only\n')
      })
      const wss = new WebSocketServer({ server: http })
      wss.on('connection', (socket, req) => {
        const stream = createWebSocketStream(socket)
        stream.on('error', (err) => log.debug({ err }, 'websocket stream error'))
        aedes.handle(stream, req)
      })
      const wsPort = await listen(http, config.wsPort, config.host)
      closer.add(
        () =>
          new Promise<void>((resolve) => {
            for (const client of wss.clients) client.terminate()
            wss.close()
            http.close(() => resolve())
            http.closeAllConnections()
          }),
      )
      wsUrl = `ws://${urlHost(config.host)}:${wsPort}`
    }

    log.info({ url, wsUrl, persistence: config.persistencePath ?? 'memory' }, 'broker listening')
    return { url, wsUrl, aedes, close: () => closer.close() }
  } catch (err) {
    await closer.close()
    throw err
  }
}
