/** MQTT roles on a real broker: who may log in, subscribe and publish what. */
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { endClient, publish } from '../../lib/mqtt.js'
import { bridgeClientId } from '../../protocol/index.js'
import { log } from '../helpers/relay.js'
import { waitFor } from '../helpers/wait-for.js'

const SECRETS = {
  gateway: 'gw-secret-123',
  admin: 'admin-secret-1',
  gpu1: 'gpu-one-secret',
  gpu2: 'gpu-two-secret',
}

async function broker(allowAnonymous = false, maxPayloadBytes = 4096) {
  const handle = await startBroker(
    {
      host: '127.0.0.1',
      port: 0,
      wsPort: null,
      persistencePath: null,
      tls: null,
      auth: {
        credentials: {
          gateway: SECRETS.gateway,
          admin: SECRETS.admin,
          gpus: { 'gpu-1': SECRETS.gpu1, 'gpu-2': SECRETS.gpu2 },
        },
        allowAnonymous,
        topicRoot: 'relay',
        maxPayloadBytes,
        gatewayClientId: 'gpu-relay-gateway',
      },
    },
    { log },
  )
  onTestFinished(() => handle.close())
  return handle
}

/** Connect and report the CONNACK return code (0 = accepted). */
function tryConnect(
  url: string,
  options: IClientOptions,
): Promise<{ code: number; client: MqttClient }> {
  return new Promise((resolve) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...options })
    onTestFinished(() => endClient(client, true))
    client.once('connect', () => resolve({ code: 0, client }))
    client.once('error', (err) => {
      const code = (err as Error & { code?: unknown }).code
      resolve({ code: typeof code === 'number' ? code : -1, client })
    })
    client.once('close', () => resolve({ code: -1, client }))
  })
}

/** The SUBACK return codes for each filter (128: refused), whether or not mqtt.js calls it an error. */
async function granted(client: MqttClient, filters: string[]): Promise<number[]> {
  try {
    return (await client.subscribeAsync(filters, { qos: 1 })).map((g) => g.qos)
  } catch (err) {
    const packet = (err as { packet?: { granted?: unknown } }).packet
    if (Array.isArray(packet?.granted))
      return packet.granted.map((g) => (typeof g === 'number' ? g : -1))
    throw err
  }
}

async function login(
  url: string,
  as: { username: string; password: string; clientId: string },
): Promise<MqttClient> {
  const { code, client } = await tryConnect(url, as)
  expect(code).toBe(0)
  return client
}

describe('MQTT logins', () => {
  it('refuses anonymous connections and wrong secrets, and lets each role in with its own', async () => {
    const b = await broker()
    expect((await tryConnect(b.url, { clientId: 'nobody' })).code).toBe(5)
    expect(
      (await tryConnect(b.url, { clientId: 'x', username: 'gateway', password: 'wrong-secret' }))
        .code,
    ).toBe(4)
    expect(
      (await tryConnect(b.url, { clientId: 'y', username: 'gpu-9', password: SECRETS.gpu1 })).code,
    ).toBe(4)
    await login(b.url, { username: 'gateway', password: SECRETS.gateway, clientId: 'gw' })
    await login(b.url, { username: 'admin', password: SECRETS.admin, clientId: 'explorer' })
    await login(b.url, {
      username: 'gpu-1',
      password: SECRETS.gpu1,
      clientId: bridgeClientId('gpu-1'),
    })
  })

  it('treats odd user names (__proto__, constructor) as unknown, without falling over', async () => {
    const b = await broker()
    for (const username of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(
        (await tryConnect(b.url, { clientId: `odd-${username}`, username, password: 'x' })).code,
      ).toBe(4)
    }
    await login(b.url, { username: 'gateway', password: SECRETS.gateway, clientId: 'still-up' })
  })

  it('keeps the gateway client id for the gateway, and admins to clean sessions', async () => {
    const b = await broker()
    const asGateway = { username: 'admin', password: SECRETS.admin, clientId: 'gpu-relay-gateway' }
    expect((await tryConnect(b.url, asGateway)).code).toBe(5)
    const keeper = {
      username: 'admin',
      password: SECRETS.admin,
      clientId: 'explorer',
      clean: false,
    }
    expect((await tryConnect(b.url, keeper)).code).toBe(5)
    await login(b.url, {
      username: 'gateway',
      password: SECRETS.gateway,
      clientId: 'gpu-relay-gateway',
    })
  })

  it('drops a client that starts sending an oversized packet before it has even logged in', async () => {
    const b = await broker()
    const { connect } = await import('node:net')
    const socket = connect(Number(new URL(b.url).port), '127.0.0.1')
    onTestFinished(() => {
      socket.destroy()
    })
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => undefined)
    // CONNECT fixed header announcing 200 MB, then 1 MB of it.
    socket.write(Buffer.from([0x10, 0x80, 0x80, 0xe8, 0x5f]))
    for (let i = 0; i < 16; i++) socket.write(Buffer.alloc(64 * 1024))
    await closed
  })

  it('lets anonymous clients in only with the development flag', async () => {
    const b = await broker(true)
    expect((await tryConnect(b.url, { clientId: 'dev' })).code).toBe(0)
  })

  it('binds a GPU credential to its bridge client id, so no one can take over another GPU session', async () => {
    const b = await broker()
    expect(
      (await tryConnect(b.url, { username: 'gpu-1', password: SECRETS.gpu1, clientId: 'other' }))
        .code,
    ).toBe(5)
    expect(
      (
        await tryConnect(b.url, {
          username: 'gpu-1',
          password: SECRETS.gpu1,
          clientId: bridgeClientId('gpu-2'),
        })
      ).code,
    ).toBe(5)
    expect(
      (
        await tryConnect(b.url, {
          username: 'admin',
          password: SECRETS.admin,
          clientId: bridgeClientId('gpu-1'),
        })
      ).code,
    ).toBe(5)
  })
})

describe('MQTT topic rights', () => {
  it('lets a GPU subscribe to its own topics only', async () => {
    const b = await broker()
    const gpu = await login(b.url, {
      username: 'gpu-1',
      password: SECRETS.gpu1,
      clientId: bridgeClientId('gpu-1'),
    })
    expect(await granted(gpu, ['relay/gpus/gpu-1/tasks', 'relay/gpus/gpu-1/control'])).toEqual([
      1, 1,
    ])
    expect(
      await granted(gpu, ['relay/gpus/gpu-2/tasks', 'relay/#', 'relay/gpus/+/events']),
    ).toEqual([128, 128, 128])
  })

  it('refuses a GPU publishing as another GPU (a forged result), and delivers its own events', async () => {
    const b = await broker()
    const gateway = await login(b.url, {
      username: 'gateway',
      password: SECRETS.gateway,
      clientId: 'gw',
    })
    const seen: string[] = []
    gateway.on('message', (topic) => seen.push(topic))
    await gateway.subscribeAsync('relay/gpus/+/events', { qos: 1 })
    const rogue = await login(b.url, {
      username: 'gpu-2',
      password: SECRETS.gpu2,
      clientId: bridgeClientId('gpu-2'),
    })
    const closed = new Promise<void>((resolve) => rogue.once('close', () => resolve()))
    rogue.publish('relay/gpus/gpu-1/events', JSON.stringify({ v: 1, kind: 'done' }), { qos: 1 })
    await closed // the broker drops a client that publishes where it may not
    const honest = await login(b.url, {
      username: 'gpu-1',
      password: SECRETS.gpu1,
      clientId: bridgeClientId('gpu-1'),
    })
    await publish(honest, { topic: 'relay/gpus/gpu-1/events', payload: '{"v":1}', qos: 1 })
    await waitFor(() => seen.includes('relay/gpus/gpu-1/events'), { what: 'the honest event' })
    expect(seen).toEqual(['relay/gpus/gpu-1/events'])
  })

  it('gives the admin read-only access to relay/#, $SYS/# and # (MQTT Explorer), not other/#', async () => {
    const b = await broker()
    const admin = await login(b.url, {
      username: 'admin',
      password: SECRETS.admin,
      clientId: 'explorer',
    })
    expect(await granted(admin, ['relay/#', '$SYS/#', 'other/#', '#'])).toEqual([1, 1, 128, 1])
    const closed = new Promise<void>((resolve) => admin.once('close', () => resolve()))
    admin.publish('relay/queue', '{}', { qos: 1 })
    await closed
  })

  it('refuses a payload over the size limit', async () => {
    const b = await broker(false, 2048)
    const gpu = await login(b.url, {
      username: 'gpu-1',
      password: SECRETS.gpu1,
      clientId: bridgeClientId('gpu-1'),
    })
    const closed = new Promise<void>((resolve) => gpu.once('close', () => resolve()))
    gpu.publish('relay/gpus/gpu-1/events', Buffer.alloc(4096, 'x'), { qos: 1 })
    await closed
  })

  it('does not publish a will aimed at another GPU', async () => {
    const b = await broker()
    const gateway = await login(b.url, {
      username: 'gateway',
      password: SECRETS.gateway,
      clientId: 'gw',
    })
    const seen: string[] = []
    gateway.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`))
    await gateway.subscribeAsync('relay/gpus/+/state', { qos: 1 })
    const { code, client } = await tryConnect(b.url, {
      username: 'gpu-1',
      password: SECRETS.gpu1,
      clientId: bridgeClientId('gpu-1'),
      will: {
        topic: 'relay/gpus/gpu-2/state',
        payload: Buffer.from('{"v":1,"online":false,"epoch":99}'),
        qos: 1,
        retain: true,
      },
    })
    expect(code).not.toBe(0) // refused at CONNECT, before the will is stored
    await endClient(client, true)
    // A will it may send arrives; the forged one never did (checked once a later message is in).
    await publish(gateway, { topic: 'relay/gpus/gpu-1/state', payload: '{"marker":1}', qos: 1 })
    await waitFor(() => seen.some((s) => s.includes('marker')), { what: 'the marker' })
    expect(seen.filter((s) => s.startsWith('relay/gpus/gpu-2/state'))).toEqual([])
  })
})
