import { Socket } from 'node:net'
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'

/**
 * Every request/response hop on an MQTT link waits for the peer's delayed ACK (~40 ms) while
 * Nagle's algorithm holds small packets back: each connection of this client disables it as its
 * CONNECT goes out (before any PUBLISH or PUBACK). TCP and TLS sockets; the WebSocket library
 * does so itself.
 */
export function noDelay(client: MqttClient): MqttClient {
  client.on('packetsend', (packet) => {
    if (packet.cmd !== 'connect') return
    const stream: unknown = client.stream
    if (stream instanceof Socket) stream.setNoDelay(true)
  })
  return client
}

/** Publish and resolve once the broker has the message (PUBACK for QoS 1). */
export function publish(
  client: MqttClient,
  message: {
    readonly topic: string
    readonly payload: Buffer | string
    readonly qos: 0 | 1
    readonly retain?: boolean
  },
): Promise<void> {
  const { topic, payload, qos, retain = false } = message
  return new Promise((resolve, reject) => {
    client.publish(topic, payload, { qos, retain }, (err) => {
      if (err) reject(err)
      else resolve()
    })
  })
}

/**
 * End a client; `force` drops the socket without DISCONNECT (the broker then sends the will).
 * A graceful end waits for in-flight QoS 1 messages, which never complete while the broker is
 * away, so it is forced when not connected or after `graceMs`.
 */
export function endClient(client: MqttClient, force = false, graceMs = 2_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.end(true, {}, () => resolve())
    }, graceMs)
    client.end(force || !client.connected, {}, () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** The state of an MQTT client's link to its broker, as health shows it. */
export type MqttLinkState = 'connecting' | 'connected' | 'refused' | 'unreachable'

export interface MqttLink {
  readonly state: MqttLinkState
  /** When the state last changed (ms since the epoch). */
  readonly since: number
  /** The CONNACK return code of the last refusal (4: bad user name or password, 5: not authorized). */
  readonly refusedCode: number | null
}

export interface MqttLinkOptions {
  readonly client: MqttClient
  readonly log: Logger
  /** Who is connecting, for the log: `gateway`, `bridge`. */
  readonly name: string
  /** While true, client errors are logged at debug (a late PUBACK after DISCONNECT while closing). */
  readonly quiet?: () => boolean
  readonly now?: () => number
  /** Longest wait between refused logins (default 60 s). */
  readonly maxBackoffMs?: number
  readonly random?: () => number
}

/** A CONNACK refusal carries its return code as a number; a socket error's code is a string. */
function errorCode(err: Error): unknown {
  return (err as Error & { code?: unknown }).code
}

/**
 * Keep a client retrying after a refused login and say which trouble it has. mqtt.js stops
 * reconnecting after a CONNACK refusal unless `reconnectOnConnackError` is set; a refusal is
 * logged as such (with its return code, never as "unreachable") and retried after a wait that
 * doubles from the configured reconnect period up to `maxBackoffMs`, with ±20% jitter, so a wrong
 * secret fixed on the broker is picked up without a restart and many clients do not retry in step.
 * A lost or unreachable broker is retried at the configured period, as before.
 */
export function watchMqttLink(options: MqttLinkOptions): { current(): MqttLink } {
  const { client, log, name } = options
  const now = options.now ?? Date.now
  const random = options.random ?? Math.random
  const maxBackoffMs = options.maxBackoffMs ?? 60_000
  const basePeriod = Math.max(1, client.options.reconnectPeriod ?? 1_000)
  client.options.reconnectOnConnackError = true
  let link: MqttLink = {
    state: client.connected ? 'connected' : 'connecting',
    since: now(),
    refusedCode: null,
  }
  let refusals = 0
  const enter = (state: MqttLinkState, refusedCode: number | null = null): void => {
    if (link.state !== state || link.refusedCode !== refusedCode) {
      link = { state, since: now(), refusedCode }
    }
  }

  client.on('connect', () => {
    refusals = 0
    client.options.reconnectPeriod = basePeriod
    enter('connected')
  })
  client.on('error', (err) => {
    const code = errorCode(err)
    if (typeof code === 'number' && code > 0) {
      refusals++
      const wait = Math.min(maxBackoffMs, basePeriod * 2 ** (refusals - 1))
      const waitMs = Math.round(wait * (0.8 + 0.4 * random()))
      // Read by mqtt.js when it sets up the next attempt, right after this event.
      client.options.reconnectPeriod = waitMs
      enter('refused', code)
      log.warn(
        { client: name, returnCode: code, err: err.message, refusals, retryInMs: waitMs },
        'MQTT login refused by the broker',
      )
      return
    }
    if (typeof code === 'string' && link.state !== 'connected') enter('unreachable')
    if (options.quiet?.()) log.debug({ client: name, err: err.message }, 'MQTT client error')
    else log.warn({ client: name, err: err.message }, 'MQTT client error')
  })
  client.on('offline', () => {
    // Right after a refusal mqtt.js goes offline too: the broker answered, it is not unreachable.
    if (link.state === 'refused') return
    enter('unreachable')
    log.warn({ client: name, mqttUrl: brokerUrl(client) }, 'MQTT broker unreachable; retrying')
  })
  client.on('close', () => {
    if (link.state === 'connected') enter('unreachable')
  })
  return { current: () => link }
}

function brokerUrl(client: MqttClient): string {
  const { protocol, hostname, host, port } = client.options
  return `${protocol ?? 'mqtt'}://${hostname ?? host ?? ''}:${String(port ?? '')}`
}
