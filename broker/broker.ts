/**
 * The MQTT broker: Aedes over TCP, TLS and WebSocket. Embedded in the gateway by default, or run
 * alone (`npm run broker`). Sessions with clean-session=false and QoS 1 are kept by the SQLite
 * persistence; logins, topic rights and payload size are checked by auth.ts.
 */
import { readFile, mkdir } from 'node:fs/promises'
import { dirname } from 'node:path'
import { Aedes, type Client } from 'aedes'
import type { Logger } from 'pino'
import { brokerAuth, clippedForLog, type BrokerAuthConfig } from './auth.js'
import { ConnectionGate, type Ticket } from './connection-gate.js'
import { listenTcp, listenTls, listenWebSocket, type Handle, type TlsFiles } from './listeners.js'
import { DEFAULT_LOGIN_BACKOFF, LoginBackoff } from './login-backoff.js'
import { guardPacketSize } from './packet-guard.js'
import { capOutgoingBytes, detachLiveDeliveries } from './slow-clients.js'
import { SqlitePersistence } from './sqlite-persistence.js'
import { publishSysTopics } from './sys-topics.js'
import { Closer } from '../lib/lifecycle.js'

export interface BrokerTlsConfig {
  readonly certPath: string
  readonly keyPath: string
  /** mqtts; 0 picks a free port. The WebSocket listener becomes wss as well. */
  readonly port: number
}

/**
 * What one client may hold of the broker (docs/design.md, "Hostile and slow MQTT clients").
 */
export interface BrokerLimits {
  /** Open connections per client address, over TCP, TLS and WebSocket together. */
  readonly maxConnectionsPerIp: number
  /** From accept to a completed CONNECT (TLS handshake and WebSocket upgrade included). */
  readonly connectTimeoutMs: number
  /**
   * A client whose unwritten outgoing bytes exceed this is disconnected unless it keeps taking
   * bytes (broker/slow-clients.ts: 2 s grace), and at once past 16 times this.
   */
  readonly maxOutgoingBytes: number
}

export const DEFAULT_BROKER_LIMITS: BrokerLimits = Object.freeze({
  maxConnectionsPerIp: 64,
  connectTimeoutMs: 5_000,
  maxOutgoingBytes: 1024 * 1024,
})

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
  /** Logins and topic rights; null accepts everyone (tests of the broker alone only). */
  readonly auth: BrokerAuthConfig | null
  readonly tls: BrokerTlsConfig | null
  /** Absent: DEFAULT_BROKER_LIMITS. */
  readonly limits?: BrokerLimits
  /** How often the `$SYS/broker/…` figures are published (broker/sys-topics.ts); default 10 s. */
  readonly sysIntervalMs?: number
}

export interface BrokerDeps {
  readonly log: Logger
  /** Monotonic milliseconds for login backoff (default performance.now). */
  readonly monotonicNow?: () => number
}

export interface BrokerHandle {
  /** `mqtt://host:port` */
  readonly url: string
  /** `mqtts://host:port`, or null without TLS. */
  readonly tlsUrl: string | null
  /** `ws://` or `wss://host:port`, or null when WebSocket is off. */
  readonly wsUrl: string | null
  readonly aedes: Aedes
  /** Clients connected now (aedes' count: logged-in clients, over every listener). */
  clientsConnected(): number
  close(): Promise<void>
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

export async function startBroker(config: BrokerConfig, deps: BrokerDeps): Promise<BrokerHandle> {
  const log = deps.log.child({ component: 'broker' })
  const closer = new Closer()
  try {
    let persistence: SqlitePersistence | undefined
    if (config.persistencePath !== null) {
      await mkdir(dirname(config.persistencePath), { recursive: true })
      const opened = new SqlitePersistence(config.persistencePath)
      closer.add(() => opened.destroy())
      persistence = opened
    }
    const limits = config.limits ?? DEFAULT_BROKER_LIMITS
    const gate = new ConnectionGate(
      { maxPerAddress: limits.maxConnectionsPerIp, connectTimeoutMs: limits.connectTimeoutMs },
      log,
    )
    const tickets = new WeakMap<Client, Ticket>()
    const backoff = new LoginBackoff({
      ...DEFAULT_LOGIN_BACKOFF,
      now: deps.monotonicNow ?? (() => performance.now()),
    })
    const addressOf = (client: Client): string => tickets.get(client)?.address ?? 'unknown'
    const aedes = await Aedes.createBroker({
      heartbeatInterval: config.heartbeatMs ?? 60_000,
      // The gate's deadline runs from accept and fires first; aedes' own is a second guard.
      connectTimeout: limits.connectTimeoutMs,
      ...(persistence ? { persistence } : {}),
      ...(config.auth ? brokerAuth(config.auth, log, { addressOf, backoff }) : {}),
    })
    detachLiveDeliveries(aedes)
    // The deadline ends with the CONNACK, not when a long queued backlog has been sent after it.
    aedes.on('connackSent', (_packet, client) => tickets.get(client)?.established())
    closer.add(() => new Promise<void>((resolve) => aedes.close(() => resolve())))
    closer.add(publishSysTopics(aedes, { intervalMs: config.sysIntervalMs ?? 10_000, log }))
    aedes.on('client', (client) =>
      log.debug({ clientId: clippedForLog(client.id) }, 'client connected'),
    )
    aedes.on('clientDisconnect', (client) =>
      log.debug({ clientId: clippedForLog(client.id) }, 'client gone'),
    )
    aedes.on('clientError', (client, err) =>
      log.debug({ clientId: clippedForLog(client.id), err }, 'client error'),
    )
    aedes.on('connectionError', (_client, err) => log.debug({ err }, 'connection error'))
    aedes.on('keepaliveTimeout', (client) =>
      log.info({ clientId: clippedForLog(client.id) }, 'client keep-alive expired'),
    )
    // aedes reports some failures (a will it could not publish) as 'error': log, never crash.
    // (Aedes' types leave the plain EventEmitter 'error' event out.)
    const emitter: import('node:events').EventEmitter = aedes
    emitter.on('error', (err: unknown) => log.error({ err }, 'broker error'))
    const maxPayload = config.auth?.maxPayloadBytes ?? null
    // One largest packet must always fit, or a client could never receive it.
    const maxOutgoingBytes = Math.max(limits.maxOutgoingBytes, 2 * (maxPayload ?? 0))
    const handle: Handle = (stream, connection, req) => {
      const client = aedes.handle(stream, req)
      tickets.set(client, connection.ticket)
      capOutgoingBytes({
        stream,
        outgoingBytes: () => connection.outgoingBytes(),
        maxBytes: maxOutgoingBytes,
        describe: () => ({
          clientId: clippedForLog(client.id),
          address: connection.ticket.address,
        }),
        log,
      })
      if (maxPayload !== null) guardPacketSize(client, maxPayload, log)
    }
    const host = urlHost(config.host)

    // With TLS configured, plain MQTT stays on the loopback interface: for the embedded gateway
    // and local tools only, never secrets in clear over a network.
    const plainHost = config.tls ? '127.0.0.1' : config.host
    const tcp = await listenTcp({ handle, gate, port: config.port, host: plainHost })
    closer.add(() => tcp.close())
    const url = `mqtt://${urlHost(plainHost)}:${String(tcp.port)}`

    let tlsFiles: TlsFiles | null = null
    let tlsUrl: string | null = null
    if (config.tls) {
      tlsFiles = {
        cert: await readFile(config.tls.certPath),
        key: await readFile(config.tls.keyPath),
      }
      const tls = await listenTls({
        handle,
        gate,
        tls: tlsFiles,
        port: config.tls.port,
        host: config.host,
        handshakeTimeoutMs: limits.connectTimeoutMs,
      })
      closer.add(() => tls.close())
      tlsUrl = `mqtts://${host}:${String(tls.port)}`
    }

    let wsUrl: string | null = null
    if (config.wsPort !== null) {
      const wsMax = maxPayload === null ? null : maxPayload + 64 * 1024
      const ws = await listenWebSocket({
        handle,
        gate,
        tls: tlsFiles,
        port: config.wsPort,
        host: config.host,
        maxPayload: wsMax,
        log,
      })
      closer.add(() => ws.close())
      wsUrl = `${tlsFiles ? 'wss' : 'ws'}://${host}:${String(ws.port)}`
    }

    log.info(
      {
        url,
        tlsUrl,
        wsUrl,
        persistence: config.persistencePath ?? 'memory',
        auth: config.auth ? (config.auth.allowAnonymous ? 'anonymous allowed' : 'required') : 'off',
      },
      'broker listening',
    )
    return {
      url,
      tlsUrl,
      wsUrl,
      aedes,
      clientsConnected: () => aedes.connectedClients,
      close: () => closer.close(),
    }
  } catch (err) {
    await closer.close()
    throw err
  }
}
