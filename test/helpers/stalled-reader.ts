/**
 * A reader that stops reading (MQTT Explorer on a poor link): a raw TCP MQTT client that logs in,
 * subscribes to a filter, then stops reading its socket while messages for it flow. A second
 * client makes them flow (noise it publishes to a topic the reader follows) and measures how long
 * its own probes take to come back meanwhile: another client's delivery while the reader stalls.
 */
import { connect, type Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import mqtt from 'mqtt'
import { endClient } from '../../lib/mqtt.js'
import { connectPacket, subscribePacket } from './raw-mqtt.js'
import { waitFor } from './wait-for.js'

export interface StalledReader {
  /**
   * Read again and tell whether the broker had closed the connection (it did not wait for the
   * reader). A socket that reads nothing notices no close, so this reads what is buffered and
   * waits up to `withinMs` for the close; a connection the broker kept stays open.
   */
  wasCut(withinMs: number): Promise<boolean>
  close(): void
}

/** Log in, subscribe at QoS 1, then stop reading. Rejects unless CONNACK and SUBACK say yes. */
export async function stalledReader(opts: {
  readonly port: number
  readonly clientId: string
  readonly username: string
  readonly password: string
  readonly filter: string
}): Promise<StalledReader> {
  const socket: Socket = connect(opts.port, '127.0.0.1')
  socket.on('error', () => undefined)
  let closedByUs = false
  let cut = false
  socket.on('close', () => {
    if (!closedByUs) cut = true
  })
  await new Promise<void>((resolve, reject) => {
    let seen = Buffer.alloc(0)
    const timer = setTimeout(() => {
      reject(new Error('stalled reader: no CONNACK/SUBACK within 5 s'))
    }, 5_000)
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk])
      if (seen.length >= 4 && (seen[0] !== 0x20 || seen[3] !== 0)) {
        clearTimeout(timer)
        reject(new Error(`stalled reader: login refused (${seen.subarray(0, 4).toString('hex')})`))
        return
      }
      if (seen.length >= 9) {
        clearTimeout(timer)
        socket.off('data', onData)
        if (seen[4] !== 0x90 || seen[8] === 0x80)
          reject(new Error('stalled reader: not subscribed'))
        else resolve()
      }
    }
    socket.on('data', onData)
    socket.once('connect', () => {
      socket.write(
        connectPacket({
          clientId: opts.clientId,
          username: opts.username,
          password: opts.password,
          clean: true,
        }),
      )
      socket.write(subscribePacket(1, opts.filter, 1))
    })
  })
  // From here on nothing is read: the kernel's buffers fill, then the broker's writes back up.
  socket.pause()
  return {
    async wasCut(withinMs) {
      socket.on('data', () => undefined)
      socket.resume()
      await waitFor(() => cut, { timeoutMs: withinMs, what: 'the broker closing' }).catch(
        () => undefined,
      )
      return cut
    },
    close() {
      closedByUs = !cut
      socket.destroy()
    },
  }
}

export interface NoiseReport {
  readonly bytes: number
  readonly probes: number
  /** The slowest probe's round trip through the broker (publish to delivery), in ms. */
  readonly maxProbeMs: number
}

/**
 * Publish noise (QoS 0, `chunkBytes` each) to `noiseTopic` for `forMs`, and a QoS 1 probe to a
 * topic of its own every 100 ms, timing each probe's delivery back to this client.
 */
export async function noiseWithProbe(opts: {
  readonly url: string
  readonly clientId: string
  readonly username: string
  readonly password: string
  readonly noiseTopic: string
  readonly probeTopic: string
  readonly forMs: number
  readonly chunkBytes: number
}): Promise<NoiseReport> {
  const client = await mqtt.connectAsync(opts.url, {
    clientId: opts.clientId,
    username: opts.username,
    password: opts.password,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
  })
  try {
    const sent = new Map<number, number>()
    const took: number[] = []
    client.on('message', (_topic, payload) => {
      const n = Number(payload.toString())
      const at = sent.get(n)
      if (at !== undefined) {
        took.push(performance.now() - at)
        sent.delete(n)
      }
    })
    await client.subscribeAsync(opts.probeTopic, { qos: 1 })
    const chunk = Buffer.alloc(opts.chunkBytes, 0x6e)
    const end = performance.now() + opts.forMs
    let bytes = 0
    let n = 0
    while (performance.now() < end) {
      for (let i = 0; i < 4; i++) {
        client.publish(opts.noiseTopic, chunk, { qos: 0 })
        bytes += chunk.length
      }
      if (n % 2 === 0) {
        sent.set(n, performance.now())
        client.publish(opts.probeTopic, String(n), { qos: 1 })
      }
      n++
      await delay(50)
    }
    // Probes still out are waited for a while; one never delivered counts as the whole wait.
    const waitUntil = performance.now() + 10_000
    while (sent.size > 0 && performance.now() < waitUntil) await delay(20)
    for (const at of sent.values()) took.push(performance.now() - at)
    return { bytes, probes: took.length, maxProbeMs: Math.round(Math.max(0, ...took)) }
  } finally {
    await endClient(client, true)
  }
}
