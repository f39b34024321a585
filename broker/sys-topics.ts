/**
 * The broker's figures on `$SYS/broker/…`, retained, as Mosquitto names them, so MQTT Explorer
 * (README "MQTT Explorer") shows them under `$SYS` as it does for Mosquitto:
 * `clients/connected` (logged-in clients now), `uptime` (`123 seconds`), `messages/received`
 * (PUBLISH packets from clients since start), `messages/sent` (PUBLISH packets delivered to
 * clients since start, retained ones on SUBSCRIBE included) and `version`. Published at start and
 * every `intervalMs`; plain text, QoS 0.
 * Aedes publishes its own, not retained, under `$SYS/{brokerId}/…` (a random id per start):
 * `heartbeat` and `birth` (the id), `new/clients` and `disconnect/clients` (a client id),
 * `new/subscribes` and `new/unsubscribes` (JSON: client id and filters).
 */
import { Aedes } from 'aedes'
import type { Logger } from 'pino'
import { SYS_PREFIX } from './admin-view.js'
import { RELAY_VERSION } from '../lib/version.js'

export const SYS_TOPICS = Object.freeze({
  clients: `${SYS_PREFIX}broker/clients/connected`,
  uptime: `${SYS_PREFIX}broker/uptime`,
  received: `${SYS_PREFIX}broker/messages/received`,
  sent: `${SYS_PREFIX}broker/messages/sent`,
  version: `${SYS_PREFIX}broker/version`,
})

export interface SysTopicsOptions {
  readonly intervalMs: number
  readonly log: Logger
  /** Monotonic ms (default performance.now). */
  readonly monotonic?: () => number
}

/** Counts and publishes; returns the stop. */
export function publishSysTopics(aedes: Aedes, options: SysTopicsOptions): () => void {
  const monotonic = options.monotonic ?? (() => performance.now())
  const started = monotonic()
  let received = 0
  let sent = 0
  aedes.on('publish', (_packet, client) => {
    if (client) received++ // the broker's own ($SYS, wills of a dead broker) have none
  })
  // Every delivery passes here (aedes calls it through the instance), after the auth rules.
  const forward = aedes.authorizeForward.bind(aedes)
  aedes.authorizeForward = (client, packet) => {
    const out = forward(client, packet)
    if (out) sent++
    return out
  }

  const publish = (topic: string, value: string): void => {
    aedes.publish(
      { cmd: 'publish', topic, payload: Buffer.from(value), qos: 0, retain: true, dup: false },
      (err) => {
        if (err) options.log.debug({ err, topic }, '$SYS figure not published')
      },
    )
  }
  const tick = (): void => {
    publish(SYS_TOPICS.clients, String(aedes.connectedClients))
    publish(SYS_TOPICS.uptime, `${String(Math.floor((monotonic() - started) / 1000))} seconds`)
    publish(SYS_TOPICS.received, String(received))
    publish(SYS_TOPICS.sent, String(sent))
  }
  // aedes has a `version` getter its types leave out.
  const aedesVersion: unknown = Reflect.get(aedes, 'version')
  const engine = typeof aedesVersion === 'string' ? ` (aedes ${aedesVersion})` : ''
  publish(SYS_TOPICS.version, `gpu-relay ${RELAY_VERSION}${engine}`)
  tick()
  const timer = setInterval(tick, options.intervalMs)
  timer.unref()
  return () => {
    clearInterval(timer)
  }
}
