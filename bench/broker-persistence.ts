/**
 * `npm run bench`: QoS 1 throughput of the embedded broker with the SQLite persistence beside the
 * in-memory one, in the same run. Two paths: a connected clean-session=false subscriber (live),
 * and an offline one whose queue is drained when it connects. Prints msg/s and the ratio.
 *
 * BENCH_MESSAGES (default 10000), BENCH_ROUNDS (default 3, the best round is reported).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { startBroker } from '../broker/broker.js'
import { silentLogger } from '../lib/logger.js'
import { endClient } from '../lib/mqtt.js'

const messages = Number(process.env.BENCH_MESSAGES ?? 10_000)
const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
const payload = Buffer.alloc(512, 'x')

async function publishAll(client: MqttClient, topic: string): Promise<void> {
  const window = 500 // in flight at once, like a busy gateway
  for (let i = 0; i < messages; i += window) {
    const batch = Array.from({ length: Math.min(window, messages - i) }, () =>
      client.publishAsync(topic, payload, { qos: 1 }),
    )
    await Promise.all(batch)
  }
}

function countTo(client: MqttClient, n: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0
    client.on('message', () => {
      seen++
      if (seen === n) resolve()
    })
  })
}

async function round(persistencePath: string | null): Promise<{ live: number; drain: number }> {
  const broker = await startBroker(
    { host: '127.0.0.1', port: 0, wsPort: null, persistencePath, auth: null, tls: null },
    { log: silentLogger() },
  )
  try {
    const publisher = await mqtt.connectAsync(broker.url, { clientId: 'bench-pub' })
    // live: a connected clean-session=false subscriber
    const live = await mqtt.connectAsync(broker.url, { clientId: 'bench-live', clean: false })
    await live.subscribeAsync('bench/live', { qos: 1 })
    const liveDone = countTo(live, messages)
    let t0 = performance.now()
    await publishAll(publisher, 'bench/live')
    await liveDone
    const liveRate = messages / ((performance.now() - t0) / 1000)
    await endClient(live)

    // offline: queue for a client that is away, then drain when it connects
    const away = await mqtt.connectAsync(broker.url, { clientId: 'bench-away', clean: false })
    await away.subscribeAsync('bench/away', { qos: 1 })
    await endClient(away)
    t0 = performance.now()
    await publishAll(publisher, 'bench/away')
    const back = mqtt.connect(broker.url, { clientId: 'bench-away', clean: false })
    await countTo(back, messages)
    const drainRate = messages / ((performance.now() - t0) / 1000)
    await endClient(back)
    await endClient(publisher)
    return { live: liveRate, drain: drainRate }
  } finally {
    await broker.close()
  }
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'gpu-relay-bench-'))
  try {
    const best = { memory: { live: 0, drain: 0 }, sqlite: { live: 0, drain: 0 } }
    for (let r = 0; r < rounds; r++) {
      const mem = await round(null)
      const sql = await round(join(dir, `broker-${String(r)}.sqlite`))
      best.memory = {
        live: Math.max(best.memory.live, mem.live),
        drain: Math.max(best.memory.drain, mem.drain),
      }
      best.sqlite = {
        live: Math.max(best.sqlite.live, sql.live),
        drain: Math.max(best.sqlite.drain, sql.drain),
      }
    }
    const fmt = (n: number): string => `${Math.round(n).toLocaleString('en-US')} msg/s`.padStart(14)
    process.stdout.write(
      [
        `broker QoS 1 throughput, ${String(messages)} messages of ${String(payload.length)} B, best of ${String(rounds)} rounds`,
        `path                         in-memory        sqlite   sqlite/memory`,
        `live subscriber          ${fmt(best.memory.live)} ${fmt(best.sqlite.live)}   ${(best.sqlite.live / best.memory.live).toFixed(2)}`,
        `offline queue + drain    ${fmt(best.memory.drain)} ${fmt(best.sqlite.drain)}   ${(best.sqlite.drain / best.memory.drain).toFixed(2)}`,
        '',
      ].join('\n'),
    )
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

main().catch((err: unknown) => {
  process.stderr.write(
    `bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  )
  process.exit(1)
})
