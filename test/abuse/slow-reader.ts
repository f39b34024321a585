/**
 * A subscriber that stops reading (docs/design.md §3.9, point 2), as MQTT Explorer on a poor link: a persistent
 * session (clean=false) on `relay/#` at QoS 1 whose socket is paused while one connection publishes
 * 19 MB of QoS 1 messages to it and, in between, pings to another client. Once the reader's socket
 * buffers are full the broker waits for it to drain (for 60 s, aedes' drain timeout) before it
 * handles that publisher's next packet, so the pings stop too. The pings' delivery p99 must stay
 * under 100 ms, the stalled reader must be disconnected, and its session must still hold its QoS 1
 * messages when it comes back.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import mqtt from 'mqtt'
import { endClient } from '../../lib/mqtt.js'
import { expectThat, type Ledger } from './cases.js'
import { rawSocket, within } from './http-raw.js'
import { connackCode, connectPacket, subscribePacket } from './mqtt-raw.js'
import { SECRETS, type AbuseRelay } from './relay-procs.js'

/** 600 × 32 kB = 19 MB, more than loopback's socket buffers hold. */
const FLOOD_MESSAGES = 600
const FLOOD_BYTES = FLOOD_MESSAGES * 32 * 1024

function p99(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? Infinity
}

export async function slowReaderAttack(
  relay: AbuseRelay,
  ledger: Ledger,
  on: { from: string; say: (line: string) => void },
): Promise<void> {
  const { from, say } = on
  const clientId = `abuse-slow-reader-${randomBytes(3).toString('hex')}`
  const login = { username: 'gateway', password: SECRETS.gateway }
  const reader = rawSocket(relay.mqtt, from, (s) => {
    s.write(connectPacket({ clientId, ...login, clean: false, keepaliveS: 0 }))
    // As MQTT Explorer does: everything under the root, so the gateway's own messages go to it too.
    s.write(subscribePacket(1, 'relay/#', 1))
  })
  const deadline = Date.now() + 3_000
  while (connackCode(reader.received()) !== 0 && Date.now() < deadline) await delay(10)
  await delay(200)
  reader.socket.pause() // stops reading: the kernel buffers fill, then the broker's

  const publisher = await mqtt.connectAsync(relay.mqttUrl, {
    clientId: `abuse-flooder-${randomBytes(3).toString('hex')}`,
    ...login,
  })
  const pinger = await mqtt.connectAsync(relay.mqttUrl, {
    clientId: `abuse-pinger-${randomBytes(3).toString('hex')}`,
    ...login,
  })
  /** Send time of each ping, and its delivery time once it arrived. */
  const sent: number[] = []
  const delivered = new Map<number, number>()
  pinger.on('message', (_topic, payload) => {
    delivered.set(Number(payload.toString()), performance.now())
  })
  await pinger.subscribeAsync('relay/abuse/ping', { qos: 0 })
  const markers = Array.from(
    { length: 5 },
    (_, i) => `marker-${String(i)}-${randomBytes(4).toString('hex')}`,
  )
  const flooding = { on: true }
  const pings = (async () => {
    while (flooding.on) {
      // From the flooding connection: its messages to the pinger queue behind those to the reader.
      sent.push(performance.now())
      publisher.publish('relay/abuse/ping', String(sent.length - 1))
      await delay(20)
    }
  })()
  const chunk = randomBytes(32 * 1024)
  const flood = (async () => {
    for (let i = 0; i < FLOOD_MESSAGES; i++) {
      publisher.publish('relay/abuse/flood/big', chunk, { qos: 1 })
      if (i % 100 === 0) {
        const marker = markers[i / 100]
        if (marker !== undefined) publisher.publish('relay/abuse/flood/marker', marker, { qos: 1 })
      }
      // About 3 MB/s: a steady stream the broker keeps up with, so what the pings measure is
      // the stalled reader, not the persistence's throughput.
      await delay(10)
    }
  })()
  await flood
  // A socket that does not read never sees the broker close it: it reads again, and a reader
  // the broker cut gets far less than the flood before its connection ends.
  reader.socket.resume()
  const closedSoon = await within(reader.closed, 3_000)
  const cut = closedSoon && reader.closedByServer() && reader.socket.bytesRead < FLOOD_BYTES / 2
  flooding.on = false
  await pings
  // A ping that never arrived counts as late as the end of the measure.
  const end = performance.now()
  const latencies = sent.map((at, i) => (delivered.get(i) ?? end) - at)
  const figure = p99(latencies)
  say(
    `slow reader: ${String(delivered.size)}/${String(sent.length)} pings delivered, p99 ${figure.toFixed(1)} ms, the stalled socket read ${(reader.socket.bytesRead / 1e6).toFixed(1)} MB`,
  )
  reader.destroy()

  await ledger.run(
    {
      area: 'slow-reader',
      point: 2,
      name: "another client's delivery p99 < 100 ms while a reader stalls",
    },
    () => {
      expectThat(sent.length >= 100, `only ${String(sent.length)} pings sent`)
      expectThat(
        figure < 100,
        `p99 ${figure.toFixed(1)} ms over ${String(sent.length)} pings (${String(delivered.size)} delivered)`,
      )
      return Promise.resolve(`p99 ${figure.toFixed(1)} ms`)
    },
  )
  await ledger.run(
    { area: 'slow-reader', point: 2, name: 'the stalled reader is disconnected' },
    () => {
      expectThat(
        cut,
        `not cut: read ${(reader.socket.bytesRead / 1e6).toFixed(1)} MB of 19.7 MB, closed by the broker: ${String(reader.closedByServer())}`,
      )
      return Promise.resolve(undefined)
    },
  )
  await ledger.run(
    { area: 'slow-reader', point: 2, name: 'its persistent session keeps its QoS 1 messages' },
    async () => {
      const got = new Set<string>()
      const back = await mqtt.connectAsync(relay.mqttUrl, { clientId, ...login, clean: false })
      back.on('message', (topic, payload) => {
        if (topic === 'relay/abuse/flood/marker') got.add(payload.toString())
      })
      const end = Date.now() + 8_000
      while (got.size < markers.length && Date.now() < end) await delay(50)
      await back.unsubscribeAsync('relay/#').catch(() => undefined)
      await endClient(back)
      // Leave no session behind.
      const clean = await mqtt.connectAsync(relay.mqttUrl, { clientId, ...login, clean: true })
      await endClient(clean)
      expectThat(
        got.size === markers.length,
        `${String(got.size)}/${String(markers.length)} QoS 1 messages kept`,
      )
    },
  )
  await endClient(publisher)
  await endClient(pinger)
}
