/**
 * A slow or stuck MQTT client only hurts itself (docs/design.md, "Hostile and slow MQTT clients").
 *
 * Aedes delivers a live message to every subscriber through its mqemitter, which holds the message
 * (one of `concurrency` slots) until every subscriber's write has drained. One client that stops
 * reading its socket therefore fills every slot, and delivery to all others waits until aedes'
 * drain timeout drops it (60 s). Here:
 * - live deliveries are detached from that wait: a subscriber's write is queued on its own stream
 *   and the emitter moves on at once (order is kept: each stream is written in delivery order);
 * - each client's unwritten outgoing bytes are bounded, without dropping a reader that is merely
 *   slow: past `maxOutgoingBytes` a grace period starts (`MQTT_STALL_GRACE_MS`, 2 s), ended by the
 *   stream's 'drain'; when it runs out with the client still over the limit, the connection is
 *   destroyed unless the client took at least `maxOutgoingBytes / 16` in that time (then another
 *   period starts). Past `HARD_CEILING_FACTOR` (16) times the limit it is destroyed at once, so
 *   memory stays bounded. A bridge on a slow uplink taking a large birth reconcile is kept; one
 *   that stopped reading is dropped about 2 s after it fell behind. A persistent session
 *   (clean-session=false) loses nothing by it: its QoS 1 messages stay queued in the persistence
 *   until PUBACK and are sent on its next connection.
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

/** How long a client may stay over its outgoing limit without taking its share of the bytes. */
export const MQTT_STALL_GRACE_MS = 2_000
/** Over this many times its outgoing limit a client is dropped at once, however it reads. */
export const HARD_CEILING_FACTOR = 16
/** A client that took less than this share of its limit during a grace period is stuck. */
const MIN_PROGRESS_SHARE = 1 / 16

/**
 * Destroy `stream` when a write leaves more than `maxBytes` unwritten and the client does not
 * catch up within a grace period, or at once past the hard ceiling (`outgoingBytes` counts what the
 * stream and the layers under it still hold).
 */
export function capOutgoingBytes(options: {
  readonly stream: Duplex
  readonly outgoingBytes: () => number
  readonly maxBytes: number
  readonly describe: () => Readonly<Record<string, string | null>>
  readonly log: Logger
  /** Default MQTT_STALL_GRACE_MS. */
  readonly graceMs?: number
}): void {
  const { stream, outgoingBytes, maxBytes, describe, log } = options
  const graceMs = options.graceMs ?? MQTT_STALL_GRACE_MS
  const ceiling = HARD_CEILING_FACTOR * maxBytes
  const minProgress = Math.ceil(maxBytes * MIN_PROGRESS_SHARE)
  let written = 0
  let timer: NodeJS.Timeout | null = null
  /** What had been handed to the layers below when the grace period started. */
  let flushedAtStart = 0
  const flushed = (): number => written - outgoingBytes()
  const stop = (): void => {
    if (timer) clearTimeout(timer)
    timer = null
  }
  const drop = (reason: string): void => {
    stop()
    if (stream.destroyed) return
    log.warn(
      { ...describe(), pendingBytes: outgoingBytes(), maxBytes, reason },
      'MQTT client fell behind its outgoing limit; disconnected',
    )
    stream.destroy()
  }
  const startGrace = (): void => {
    flushedAtStart = flushed()
    timer = setTimeout(() => {
      timer = null
      if (stream.destroyed || outgoingBytes() <= maxBytes) return
      if (flushed() - flushedAtStart < minProgress) drop('stalled')
      else startGrace()
    }, graceMs)
    timer.unref()
  }
  const write = stream.write.bind(stream) as (...args: unknown[]) => boolean
  const capped = (...args: unknown[]): boolean => {
    const [chunk] = args
    if (typeof chunk === 'string') written += Buffer.byteLength(chunk)
    else if (chunk instanceof Uint8Array) written += chunk.byteLength
    const ok = write(...args)
    const pending = outgoingBytes()
    if (pending > ceiling) drop('hard ceiling')
    else if (pending > maxBytes && !timer && !stream.destroyed) startGrace()
    return ok
  }
  stream.write = capped as Duplex['write']
  stream.on('drain', stop)
  stream.once('close', stop)
}

function noop(): void {
  // The subscriber's own write completion is not waited for (see above).
}
