/**
 * A slow or stuck MQTT client only hurts itself (docs/design.md, "Hostile and slow MQTT clients").
 *
 * Aedes delivers a live message to every subscriber through its mqemitter, which holds the message
 * (one of `concurrency` slots) until every subscriber's write has drained. One client that stops
 * reading its socket therefore fills every slot, and delivery to all others waits until aedes'
 * drain timeout drops it (60 s). Here:
 * - live deliveries are detached from that wait: a subscriber's write is queued on its own stream
 *   and the emitter moves on at once (order is kept: each stream is written in delivery order);
 * - each client's unwritten outgoing bytes are bounded: past `maxOutgoingBytes` its connection is
 *   destroyed at once. A persistent session (clean-session=false) loses nothing by it: its QoS 1
 *   messages stay queued in the persistence until PUBACK and are sent on its next connection.
 * A queued backlog (sent on reconnect) and retained messages (sent on SUBSCRIBE) keep aedes' own
 * pacing: they wait for the client's drain, which holds up that client alone.
 */
import type { Duplex } from 'node:stream'
import type { Aedes } from 'aedes'
import type { Logger } from 'pino'

type Deliver = Parameters<Aedes['subscribe']>[1]

/** Make a broker's subscription deliveries release the emitter without waiting for the socket. */
export function detachLiveDeliveries(aedes: Aedes): void {
  const detached = new WeakMap<Deliver, Deliver>()
  const detach = (deliver: Deliver): Deliver => {
    let wrapped = detached.get(deliver)
    if (!wrapped) {
      wrapped = (packet, done) => {
        deliver(packet, noop)
        setImmediate(done)
      }
      detached.set(deliver, wrapped)
    }
    return wrapped
  }
  const subscribe = aedes.subscribe.bind(aedes)
  const unsubscribe = aedes.unsubscribe.bind(aedes)
  // Unsubscribe finds the same wrapper, so listeners are removed as before.
  aedes.subscribe = (topic, deliver, done) => {
    subscribe(topic, detach(deliver), done)
  }
  aedes.unsubscribe = (topic, deliver, done) => {
    unsubscribe(topic, detach(deliver), done)
  }
}

/**
 * Destroy `stream` as soon as a write leaves more than `maxBytes` unwritten (`outgoingBytes`
 * counts what the stream and the layers under it still hold).
 */
export function capOutgoingBytes(options: {
  readonly stream: Duplex
  readonly outgoingBytes: () => number
  readonly maxBytes: number
  readonly describe: () => Readonly<Record<string, string | null>>
  readonly log: Logger
}): void {
  const { stream, outgoingBytes, maxBytes, describe, log } = options
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean
  const capped = (...args: unknown[]): boolean => {
    const ok = write(...args)
    const pending = outgoingBytes()
    if (pending > maxBytes && !stream.destroyed) {
      log.warn(
        { ...describe(), pendingBytes: pending, maxBytes },
        'MQTT client fell behind its outgoing limit; disconnected',
      )
      stream.destroy()
    }
    return ok
  }
  stream.write = capped as Duplex['write']
}

function noop(): void {
  // The subscriber's own write completion is not waited for (see above).
}
