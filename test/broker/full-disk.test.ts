/**
 * The broker's SQLite persistence on a full disk (a real small tmpfs): every write answers
 * through its promise (aedes refuses that packet or CONNECT), nothing throws or rejects
 * unhandled, a client with a Last Will reconnecting is refused instead of killing the process,
 * the broker starts on the full disk, and everything works again once space returns.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { SqlitePersistence } from '../../broker/sqlite-persistence.js'
import { silentLogger } from '../../lib/logger.js'
import { endClient } from '../../lib/mqtt.js'
import { IN_CI, fillDisk, smallTmpfs, tmpfsProblem } from '../helpers/tmpfs.js'
import { waitFor } from '../helpers/wait-for.js'

const problem = await tmpfsProblem()
if (problem !== null && !IN_CI) console.warn(`SKIPPED broker full-disk tests: ${problem}`)

/** Unhandled rejections while the test runs (each one would kill a production process). */
function watchUnhandled(): unknown[] {
  const seen: unknown[] = []
  const onRejection = (reason: unknown): void => {
    seen.push(reason)
  }
  process.on('unhandledRejection', onRejection)
  onTestFinished(() => {
    process.off('unhandledRejection', onRejection)
  })
  return seen
}

const client = { id: 'bridge-x' }
const packet = (topic: string, payload = 'x') => ({
  cmd: 'publish',
  topic,
  payload: Buffer.from(payload),
  qos: 1,
  retain: false,
  dup: false,
  messageId: 7,
  brokerId: 'b1',
  brokerCounter: 1,
})

async function outcome(work: () => Promise<unknown>): Promise<'resolved' | 'rejected'> {
  // `work()` itself must not throw: a synchronous throw fails the test here.
  const promise = work()
  return promise.then(
    () => 'resolved' as const,
    () => 'rejected' as const,
  )
}

async function brokerOn(dir: string) {
  return startBroker(
    {
      host: '127.0.0.1',
      port: 0,
      wsPort: null,
      persistencePath: join(dir, 'broker.sqlite'),
      auth: null,
      tls: null,
    },
    { log: silentLogger() },
  )
}

/** Connect once (no reconnect): 'connected', or 'refused' when the broker closed it first. */
async function tryConnect(
  url: string,
  opts: mqtt.IClientOptions,
): Promise<{ result: 'connected' | 'refused'; client: MqttClient }> {
  const c = mqtt.connect(url, { ...opts, reconnectPeriod: 0, connectTimeout: 5_000 })
  onTestFinished(() => endClient(c))
  const result = await new Promise<'connected' | 'refused'>((resolve) => {
    c.once('connect', () => resolve('connected'))
    c.once('close', () => resolve('refused'))
    c.once('error', () => resolve('refused'))
  })
  return { result, client: c }
}

describe.skipIf(problem !== null && !IN_CI)('broker persistence on a full disk', () => {
  it('answers every failed write through its promise (delWill resolves), reads keep working, and writes work again once space returns', async () => {
    const dir = await smallTmpfs('broker-persist', 8)
    const unhandled = watchUnhandled()
    const p = new SqlitePersistence(join(dir, 'broker.sqlite'))
    onTestFinished(() => p.destroy().catch(() => undefined))
    await p.setup({ id: 'b1' })
    await p.addSubscriptions(client, [{ topic: 'relay/a', qos: 1 }])
    await p.putWill(client, packet('relay/will'))
    await p.outgoingEnqueue({ clientId: client.id }, packet('relay/a'))

    const filler = fillDisk(dir)
    const writes: Record<string, () => Promise<unknown>> = {
      storeRetained: () => p.storeRetained(packet('relay/r', 'big'.repeat(2_000))),
      addSubscriptions: () => p.addSubscriptions(client, [{ topic: 'relay/b', qos: 1 }]),
      removeSubscriptions: () => p.removeSubscriptions(client, ['relay/a']),
      cleanSubscriptions: () => p.cleanSubscriptions(client),
      outgoingEnqueueCombi: () =>
        p.outgoingEnqueueCombi([{ clientId: 'c1' }, { clientId: 'c2' }], packet('relay/q')),
      outgoingUpdate: () => p.outgoingUpdate(client, { ...packet('relay/a'), messageId: 9 }),
      incomingStorePacket: () => p.incomingStorePacket(client, packet('relay/in')),
      putWill: () => p.putWill(client, packet('relay/will2')),
    }
    const results: Record<string, string> = {}
    for (const [name, work] of Object.entries(writes)) results[name] = await outcome(work)
    expect(results).toEqual(Object.fromEntries(Object.keys(writes).map((n) => [n, 'rejected'])))
    // aedes' CONNECT chains delWill with .finally() and handles no rejection: it resolves.
    expect(await outcome(() => p.delWill(client))).toBe('resolved')
    // Reads still answer: the session and the queued message are all there.
    expect((await p.subscriptionsByClient(client)).map((s) => s.topic)).toEqual(['relay/a'])
    expect((await p.getWill(client))?.topic).toBe('relay/will')

    await rm(filler)
    for (const [name, work] of Object.entries(writes)) {
      expect(await outcome(work), name).toBe('resolved')
    }
    expect(unhandled).toEqual([])
  })

  it('refuses the CONNECT of a client with a Last Will while the disk is full, without crashing; starts on the full disk; lets it in once space returns', async () => {
    const dir = await smallTmpfs('broker-will', 8)
    const unhandled = watchUnhandled()
    let broker = await brokerOn(dir)
    let closed = false
    onTestFinished(() => (closed ? undefined : broker.close()))
    const will = {
      topic: 'relay/gpus/gpu-x/state',
      payload: Buffer.from('{"online":false}'),
      qos: 1 as const,
      retain: true,
    }
    // A bridge whose old connection the broker still holds (a glitch it has not noticed yet):
    // its will is stored, so the reconnect's CONNECT must delete it first.
    const first = await tryConnect(broker.url, { clientId: 'bridge-will', clean: false, will })
    expect(first.result).toBe('connected')
    await first.client.subscribeAsync('relay/gpus/gpu-x/tasks', { qos: 1 })

    let filler = fillDisk(dir)
    // The reconnect that used to kill the process (an unhandled rejection from delWill).
    for (let i = 0; i < 3; i++) {
      const again = await tryConnect(broker.url, { clientId: 'bridge-will', clean: false, will })
      expect(again.result).toBe('refused')
    }
    // The broker is still up: a clean client without a will gets in.
    const plain = await tryConnect(broker.url, { clientId: 'admin-x', clean: true })
    expect(plain.result).toBe('connected')
    await endClient(plain.client)
    await endClient(first.client)

    // Stopped cleanly (SQLite removes its -shm), the disk fills, it starts again: it starts.
    await rm(filler)
    await broker.close()
    closed = true
    filler = fillDisk(dir)
    broker = await brokerOn(dir)
    closed = false
    const afterRestart = await tryConnect(broker.url, {
      clientId: 'bridge-will',
      clean: false,
      will,
    })
    expect(afterRestart.result).toBe('refused')

    await rm(filler)
    const back = await waitFor(
      async () => {
        const attempt = await tryConnect(broker.url, {
          clientId: 'bridge-will',
          clean: false,
          will,
        })
        return attempt.result === 'connected' ? attempt.client : null
      },
      { what: 'the will client connects again', timeoutMs: 10_000 },
    )
    // Its persistent session survived the full disk.
    expect(back.options.clientId).toBe('bridge-will')
    expect(unhandled).toEqual([])
    await broker.close()
    closed = true
  })
})
