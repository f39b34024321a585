/**
 * A subscriber that stops reading its socket only hurts itself (docs/design.md, "Hostile and
 * slow MQTT clients"): the other subscribers' deliveries go on without waiting for it, it is
 * disconnected once its unwritten bytes pass MQTT_MAX_OUTGOING_BYTES, and its persistent session
 * delivers everything it missed when it returns.
 */
import { join } from 'node:path'
import mqtt from 'mqtt'
import { WebSocket } from 'ws'
import { describe, expect, it, onTestFinished } from 'vitest'
import { DEFAULT_BROKER_LIMITS, startBroker } from '../../broker/broker.js'
import { silentLogger } from '../../lib/logger.js'
import { endClient } from '../../lib/mqtt.js'
import { connectPacket, rawConnect, rawLogin } from '../helpers/raw-mqtt.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

// Long enough (about 7 s) for the stuck reader to fill its buffers and outlast its 2 s grace.
const TOTAL = 3_000
const INTERVAL_MS = 2
const PAYLOAD_BYTES = 4 * 1024
/**
 * 8 MB of live messages at once, like a birth reconcile of a large backlog. On loopback the kernel's
 * socket buffers take about 4.5 MB of it, so a smaller burst would never reach the broker's limit.
 */
const BURST_MESSAGES = 2_000

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? Number.NaN
}

/** Log in over WebSocket and stop reading right after the CONNACK (ws stops reading its socket). */
async function stuckOverWebSocket(url: string, clientId: string): Promise<() => void> {
  const ws = new WebSocket(url, 'mqtt')
  ws.on('error', () => undefined)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      ws.send(connectPacket({ clientId, clean: false }))
    })
    // The CONNACK may come in several WebSocket messages (one per write).
    let got = Buffer.alloc(0)
    const onMessage = (data: Buffer): void => {
      got = Buffer.concat([got, data])
      if (got.length < 4) return
      ws.pause()
      ws.off('message', onMessage)
      if (got[0] === 0x20 && got[3] === 0) resolve()
      else reject(new Error(`expected CONNACK 0, got ${got.toString('hex')}`))
    }
    ws.on('message', onMessage)
    ws.once('close', () => reject(new Error('closed before CONNACK')))
  })
  return () => ws.terminate()
}

/** Log in over TCP and stop reading right after the CONNACK. */
async function stuckOverTcp(url: string, clientId: string): Promise<() => void> {
  const socket = await rawConnect(Number(new URL(url).port))
  socket.on('error', () => undefined)
  expect(await rawLogin(socket, connectPacket({ clientId, clean: false }))).toBe(0)
  return () => socket.destroy()
}

describe.each([
  { transport: 'tcp', stuckClient: stuckOverTcp },
  { transport: 'websocket', stuckClient: stuckOverWebSocket },
])('a subscriber that stops reading ($transport)', ({ transport, stuckClient }) => {
  it('is disconnected on its own, others keep a p99 under 100 ms, and it gets every QoS 1 message it missed, in order, when it returns', async () => {
    const dir = await tempDir('slow-subscriber')
    const broker = await startBroker(
      {
        host: '127.0.0.1',
        port: 0,
        wsPort: transport === 'websocket' ? 0 : null,
        persistencePath: join(dir, 'broker.sqlite'),
        auth: null,
        tls: null,
        limits: DEFAULT_BROKER_LIMITS,
      },
      { log: silentLogger() },
    )
    onTestFinished(() => broker.close())
    const stuckId = `stuck-${String(process.pid)}`

    // The stuck one's persistent session and subscription, made by a well-behaved first visit.
    const first = await mqtt.connectAsync(broker.url, { clientId: stuckId, clean: false })
    await first.subscribeAsync('flow/#', { qos: 1 })
    await endClient(first)

    let published = 0
    let publishedAtDisconnect = -1
    broker.aedes.on('clientDisconnect', (client) => {
      if (client.id === stuckId && publishedAtDisconnect < 0) publishedAtDisconnect = published
    })

    // Back with the same session, it stops reading the moment it has its CONNACK.
    const stuckUrl = transport === 'websocket' ? (broker.wsUrl ?? '') : broker.url
    onTestFinished(await stuckClient(stuckUrl, stuckId))

    const healthy = await mqtt.connectAsync(broker.url, { clientId: 'healthy', clean: false })
    onTestFinished(() => endClient(healthy, true))
    const latencies: number[] = []
    healthy.on('message', (_topic, payload) => {
      latencies.push(performance.now() - payload.readDoubleBE(4))
    })
    await healthy.subscribeAsync('flow/#', { qos: 1 })

    const publisher = await mqtt.connectAsync(broker.url, { clientId: 'publisher' })
    onTestFinished(() => endClient(publisher, true))
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const payload = Buffer.alloc(PAYLOAD_BYTES)
        payload.writeUInt32BE(published, 0)
        payload.writeDoubleBE(performance.now(), 4)
        publisher.publish('flow/x', payload, { qos: 1 })
        published++
        if (published === TOTAL) {
          clearInterval(timer)
          resolve()
        }
      }, INTERVAL_MS)
    })
    await waitFor(() => latencies.length === TOTAL, {
      timeoutMs: 20_000,
      what: `the healthy subscriber's ${String(TOTAL)} messages (has ${String(latencies.length)})`,
    })
    const sorted = [...latencies].sort((a, b) => a - b)
    const [p50, p99, max] = [percentile(sorted, 50), percentile(sorted, 99), sorted.at(-1) ?? 0]
    console.log(
      `slow subscriber (${transport}): healthy delivery latency over ${String(TOTAL)} messages of ` +
        `${String(PAYLOAD_BYTES)} B: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ` +
        `max ${max.toFixed(1)} ms; stuck reader disconnected after ${String(publishedAtDisconnect)} published`,
    )
    expect(p99).toBeLessThan(100)
    // Disconnected while the flow went on, not by a drain or keep-alive timeout afterwards.
    expect(publishedAtDisconnect).toBeGreaterThan(0)
    expect(publishedAtDisconnect).toBeLessThan(TOTAL)

    // Back with a reader that reads: every message, once, in order.
    const returned: number[] = []
    const back = await mqtt.connectAsync(broker.url, { clientId: stuckId, clean: false })
    onTestFinished(() => endClient(back, true))
    back.on('message', (_topic, payload) => returned.push(payload.readUInt32BE(0)))
    await waitFor(() => returned.length >= TOTAL, {
      timeoutMs: 30_000,
      what: `the returning subscriber's backlog (has ${String(returned.length)})`,
    })
    expect(returned).toEqual(Array.from({ length: TOTAL }, (_, i) => i))
  }, 90_000)
})

describe('a subscriber on a slow link', () => {
  it('takes an 8 MB burst at its own pace (about 3 MB/s), over MQTT_MAX_OUTGOING_BYTES for a while, without being disconnected', async () => {
    const broker = await startBroker(
      {
        host: '127.0.0.1',
        port: 0,
        wsPort: null,
        persistencePath: null,
        auth: null,
        tls: null,
        limits: DEFAULT_BROKER_LIMITS,
      },
      { log: silentLogger() },
    )
    onTestFinished(() => broker.close())
    const slowId = `slow-${String(process.pid)}`
    const first = await mqtt.connectAsync(broker.url, { clientId: slowId, clean: false })
    await first.subscribeAsync('burst/#', { qos: 0 })
    await endClient(first)

    // Back with its session, it reads one socket read (at most 64 KiB) every 20 ms.
    let conn: { readonly writableLength: number } | null = null
    broker.aedes.on('client', (client) => {
      if (client.id === slowId) conn = client.conn
    })
    const socket = await rawConnect(Number(new URL(broker.url).port))
    onTestFinished(() => {
      socket.destroy()
    })
    socket.on('error', () => undefined)
    expect(await rawLogin(socket, connectPacket({ clientId: slowId, clean: false }))).toBe(0)
    let received = 0
    let closed = false
    socket.on('close', () => (closed = true))
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length
      socket.pause()
    })
    const reader = setInterval(() => socket.resume(), 20)
    onTestFinished(() => clearInterval(reader))

    let peakUnwritten = 0
    const overLimit = { first: Number.NaN, last: Number.NaN }
    const sampler = setInterval(() => {
      const unwritten = conn?.writableLength ?? 0
      peakUnwritten = Math.max(peakUnwritten, unwritten)
      if (unwritten > DEFAULT_BROKER_LIMITS.maxOutgoingBytes) {
        if (Number.isNaN(overLimit.first)) overLimit.first = performance.now()
        overLimit.last = performance.now()
      }
    }, 20)
    onTestFinished(() => clearInterval(sampler))

    const publisher = await mqtt.connectAsync(broker.url, { clientId: `burst-pub-${slowId}` })
    onTestFinished(() => endClient(publisher, true))
    const start = performance.now()
    for (let i = 0; i < BURST_MESSAGES; i++) {
      publisher.publish('burst/x', Buffer.alloc(PAYLOAD_BYTES), { qos: 0 })
    }
    const burstBytes = BURST_MESSAGES * PAYLOAD_BYTES
    await waitFor(() => closed || received >= burstBytes, {
      timeoutMs: 40_000,
      what: `the burst received (has ${String(received)} of ${String(burstBytes)} B)`,
    })
    console.log(
      `slow subscriber: ${(burstBytes / 1e6).toFixed(1)} MB burst read in ` +
        `${(performance.now() - start).toFixed(0)} ms, peak unwritten at the broker ` +
        `${(peakUnwritten / 1e6).toFixed(2)} MB (limit ${(DEFAULT_BROKER_LIMITS.maxOutgoingBytes / 1e6).toFixed(2)} MB), over it for ` +
        `${(overLimit.last - overLimit.first).toFixed(0)} ms; ` +
        `disconnected: ${String(closed)}`,
    )
    expect(closed).toBe(false)
    expect(received).toBeGreaterThanOrEqual(burstBytes)
    expect(peakUnwritten).toBeGreaterThan(DEFAULT_BROKER_LIMITS.maxOutgoingBytes)
  }, 60_000)
})
