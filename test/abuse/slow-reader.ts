/**
 * A subscriber that stops reading (issue 8 §2): a persistent session (clean=false) subscribed at
 * QoS 1 whose socket is paused while 16 MB of QoS 1 messages flow to it (a QoS 0 flood does not
 * hold anyone else up; a QoS 1 one did, for the broker's 60 s drain timeout). Another client's delivery p99 must stay
 * under 100 ms, the stalled one must be disconnected, and its session must still hold its QoS 1
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

function p99(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? Infinity
}

export async function slowReaderAttack(
  relay: AbuseRelay,
  ledger: Ledger,
  from: string,
  say: (line: string) => void,
): Promise<void> {
  const clientId = `abuse-slow-reader-${randomBytes(3).toString('hex')}`
  const login = { username: 'gateway', password: SECRETS.gateway }
  const reader = rawSocket(relay.mqtt, from, (s) => {
    s.write(connectPacket({ clientId, ...login, clean: false, keepaliveS: 0 }))
    s.write(subscribePacket(1, 'relay/abuse/flood/#', 1))
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
  const latencies: number[] = []
  pinger.on('message', (_topic, payload) => {
    latencies.push(performance.now() - Number(payload.toString()))
  })
  await pinger.subscribeAsync('relay/abuse/ping', { qos: 0 })
  const markers = Array.from(
    { length: 5 },
    (_, i) => `marker-${String(i)}-${randomBytes(4).toString('hex')}`,
  )
  const flooding = { on: true }
  const pings = (async () => {
    while (flooding.on) {
      pinger.publish('relay/abuse/ping', String(performance.now()))
      await delay(20)
    }
  })()
  const chunk = randomBytes(200 * 1024)
  const flood = (async () => {
    for (let i = 0; i < 80 && flooding.on; i++) {
      publisher.publish('relay/abuse/flood/big', chunk, { qos: 1 })
      if (i % 16 === 0) {
        const marker = markers[i / 16]
        if (marker !== undefined) publisher.publish('relay/abuse/flood/marker', marker, { qos: 1 })
      }
      await delay(10)
    }
  })()
  await flood
  const cut = await within(reader.closed, 6_000)
  flooding.on = false
  await pings
  const figure = p99(latencies)
  say(`slow reader: ${String(latencies.length)} pings, delivery p99 ${figure.toFixed(1)} ms`)
  reader.destroy()

  await ledger.run(
    'slow-reader',
    2,
    "another client's delivery p99 < 100 ms while a reader stalls",
    () => {
      expectThat(latencies.length >= 100, `only ${String(latencies.length)} pings delivered`)
      expectThat(figure < 100, `p99 ${figure.toFixed(1)} ms over ${String(latencies.length)} pings`)
      return Promise.resolve(`p99 ${figure.toFixed(1)} ms`)
    },
  )
  await ledger.run('slow-reader', 2, 'the stalled reader is disconnected', () => {
    expectThat(cut && reader.closedByServer(), 'still connected after 16 MB and 6 s more')
    return Promise.resolve(undefined)
  })
  await ledger.run(
    'slow-reader',
    2,
    'its persistent session keeps its QoS 1 messages',
    async () => {
      const got = new Set<string>()
      const back = await mqtt.connectAsync(relay.mqttUrl, { clientId, ...login, clean: false })
      back.on('message', (topic, payload) => {
        if (topic === 'relay/abuse/flood/marker') got.add(payload.toString())
      })
      const end = Date.now() + 8_000
      while (got.size < markers.length && Date.now() < end) await delay(50)
      await back.unsubscribeAsync('relay/abuse/flood/#').catch(() => undefined)
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
