/**
 * Hostile MQTT connections cost little and for a short time only (docs/design.md, "Hostile and
 * slow MQTT clients"): a CONNECT not completed within MQTT_CONNECT_TIMEOUT_MS is dropped on every
 * listener, connections over MQTT_MAX_CONNECTIONS_PER_IP are closed at once, and wrong passwords
 * back off per address, while an honest client on 127.0.0.1 gets its CONNACK and its messages
 * throughout.
 */
import { writeFile } from 'node:fs/promises'
import { connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import mqtt from 'mqtt'
import pino from 'pino'
import { generate } from 'selfsigned'
import { describe, expect, it, onTestFinished } from 'vitest'
import { WebSocket } from 'ws'
import {
  DEFAULT_BROKER_LIMITS,
  startBroker,
  type BrokerHandle,
  type BrokerLimits,
} from '../../broker/broker.js'
import { endClient, publish } from '../../lib/mqtt.js'
import { freePort } from '../helpers/free-port.js'
import { connectPacket, countPackets, rawConnect, rawLogin } from '../helpers/raw-mqtt.js'
import { log as silentLog } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const GATEWAY_SECRET = 'Zq8kP3vW7mXr'
const WRONG_SECRETS = [
  'Hy5tLc2Nd9Qe',
  'Bf4Ju7Sa1Ko6',
  'Wx3Rg8Pm5Tn2',
  'Lk9Dv6Cz4Ey1',
  'Mq2Hs7Fb3Gw8',
]

async function tlsFiles(): Promise<{ certPath: string; keyPath: string }> {
  const dir = await tempDir('hostile-tls')
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 })
  const certPath = join(dir, 'cert.pem')
  const keyPath = join(dir, 'key.pem')
  await writeFile(certPath, pems.cert)
  await writeFile(keyPath, pems.private)
  return { certPath, keyPath }
}

async function broker(options: {
  readonly limits: BrokerLimits
  readonly tls?: { certPath: string; keyPath: string }
  readonly log?: pino.Logger
  readonly monotonicNow?: () => number
}): Promise<BrokerHandle> {
  const handle = await startBroker(
    {
      host: '127.0.0.1',
      port: 0,
      wsPort: 0,
      persistencePath: null,
      tls: options.tls ? { ...options.tls, port: 0 } : null,
      auth: {
        credentials: { gateway: GATEWAY_SECRET, admin: null, gpus: {} },
        allowAnonymous: false,
        topicRoot: 'relay',
        maxPayloadBytes: 64 * 1024,
        gatewayClientId: 'gpu-relay-gateway',
      },
      limits: options.limits,
    },
    {
      log: options.log ?? silentLog,
      ...(options.monotonicNow ? { monotonicNow: options.monotonicNow } : {}),
    },
  )
  onTestFinished(() => handle.close())
  return handle
}

function portOf(url: string | null): number {
  return Number(new URL(url ?? 'mqtt://x:0').port)
}

/** Resolves with the milliseconds from now until `socket` closes (Infinity if not within 30 s). */
function closedAfter(socket: { once(event: 'close', cb: () => void): unknown }): Promise<number> {
  const start = performance.now()
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(Number.POSITIVE_INFINITY), 30_000)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(performance.now() - start)
    })
  })
}

/** The honest client: logs in from 127.0.0.1 and receives what another honest client publishes. */
async function honestRoundTrip(url: string): Promise<{ connackMs: number; received: number }> {
  const start = performance.now()
  const sub = await mqtt.connectAsync(url, {
    clientId: 'honest-sub',
    username: 'gateway',
    password: GATEWAY_SECRET,
    reconnectPeriod: 0,
  })
  const connackMs = performance.now() - start
  onTestFinished(() => endClient(sub, true))
  let received = 0
  sub.on('message', () => received++)
  await sub.subscribeAsync('relay/honest', { qos: 1 })
  const pub = await mqtt.connectAsync(url, {
    clientId: 'honest-pub',
    username: 'gateway',
    password: GATEWAY_SECRET,
    reconnectPeriod: 0,
  })
  onTestFinished(() => endClient(pub, true))
  for (let i = 0; i < 20; i++)
    await publish(pub, { topic: 'relay/honest', payload: String(i), qos: 1 })
  await waitFor(() => received === 20, { what: 'the honest messages' })
  return { connackMs, received }
}

function track<T extends { destroy(): void } | { terminate(): void }>(thing: T): T {
  onTestFinished(() => {
    if ('destroy' in thing) thing.destroy()
    else thing.terminate()
  })
  return thing
}

describe('hostile MQTT connections', () => {
  it('drops half-sent CONNECTs from many addresses, on TCP, TLS and WebSocket, within the deadline, while an honest client gets in', async () => {
    const deadlineMs = 1_500
    const b = await broker({
      limits: { ...DEFAULT_BROKER_LIMITS, connectTimeoutMs: deadlineMs },
      tls: await tlsFiles(),
    })
    const half = connectPacket({ clientId: 'attacker', clean: true }).subarray(0, 12)
    const closes: Promise<number>[] = []
    // 200 half-sent CONNECTs over TCP from 127.0.0.2 … 127.0.0.41.
    for (let a = 2; a <= 41; a++) {
      for (let i = 0; i < 5; i++) {
        const socket = track(await rawConnect(portOf(b.url), `127.0.0.${String(a)}`))
        socket.on('error', () => undefined)
        closes.push(closedAfter(socket))
        socket.write(half)
      }
    }
    // TLS: a handshake never started, and a handshake done with half a CONNECT after it.
    const idleTls = track(
      netConnect({ port: portOf(b.tlsUrl), host: '127.0.0.1', localAddress: '127.0.0.42' }),
    )
    idleTls.on('error', () => undefined)
    closes.push(closedAfter(idleTls))
    const halfTls = track(
      tlsConnect({
        socket: track(await rawConnect(portOf(b.tlsUrl), '127.0.0.43')),
        rejectUnauthorized: false,
      }),
    )
    halfTls.on('error', () => undefined)
    halfTls.once('secureConnect', () => halfTls.write(half))
    closes.push(closedAfter(halfTls))
    // WebSocket: an upgrade request cut off in its headers, and an upgrade with half a CONNECT.
    const halfUpgrade: Socket = track(
      netConnect({ port: portOf(b.wsUrl), host: '127.0.0.1', localAddress: '127.0.0.44' }),
    )
    halfUpgrade.on('error', () => undefined)
    halfUpgrade.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n')
    closes.push(closedAfter(halfUpgrade))
    const halfWs = track(
      new WebSocket(b.wsUrl ?? '', 'mqtt', {
        localAddress: '127.0.0.45',
        rejectUnauthorized: false,
      }),
    )
    halfWs.on('error', () => undefined)
    halfWs.once('open', () => halfWs.send(half))
    closes.push(closedAfter(halfWs))

    const honest = await honestRoundTrip(b.url)
    const times = await Promise.all(closes)
    const slowest = Math.max(...times)
    console.log(
      `half-sent CONNECTs: ${String(times.length)} dropped, the last after ${slowest.toFixed(0)} ms ` +
        `(deadline ${String(deadlineMs)} ms); honest CONNACK in ${honest.connackMs.toFixed(0)} ms`,
    )
    expect(times).toHaveLength(204)
    expect(slowest).toBeLessThan(deadlineMs + 1_000)
    expect(honest.received).toBe(20)
  }, 60_000)

  it('closes connections over the per-address cap at once, counting every listener, and admits again when one closes', async () => {
    const cap = 8
    const b = await broker({
      limits: { ...DEFAULT_BROKER_LIMITS, maxConnectionsPerIp: cap, connectTimeoutMs: 20_000 },
    })
    const held: Socket[] = []
    for (let i = 0; i < cap; i++) {
      const socket = track(await rawConnect(portOf(b.url), '127.0.0.2'))
      socket.on('error', () => undefined)
      held.push(socket)
    }
    // The next one over TCP: closed at once, its CONNECT never answered.
    const over = track(await rawConnect(portOf(b.url), '127.0.0.2'))
    over.on('error', () => undefined)
    let answered = 0
    over.on('data', (chunk: Buffer) => (answered += chunk.length))
    const overClosed = closedAfter(over)
    over.write(
      connectPacket({
        clientId: 'over',
        clean: true,
        username: 'gateway',
        password: GATEWAY_SECRET,
      }),
    )
    const overMs = await overClosed
    // … and over WebSocket from the same address: the cap counts the listeners together.
    const overWs = track(new WebSocket(b.wsUrl ?? '', 'mqtt', { localAddress: '127.0.0.2' }))
    overWs.on('error', () => undefined)
    const overWsMs = await closedAfter(overWs)
    console.log(
      `over the cap: TCP closed after ${overMs.toFixed(0)} ms, WebSocket after ${overWsMs.toFixed(0)} ms (deadline 20000 ms)`,
    )
    expect(overMs).toBeLessThan(1_000)
    expect(overWsMs).toBeLessThan(1_000)
    expect(answered).toBe(0)

    // Other addresses are not affected; one of the held sockets closing makes room again.
    await honestRoundTrip(b.url)
    const other = track(await rawConnect(portOf(b.url), '127.0.0.3'))
    expect(
      await rawLogin(
        other,
        connectPacket({
          clientId: 'other',
          clean: true,
          username: 'gateway',
          password: GATEWAY_SECRET,
        }),
      ),
    ).toBe(0)
    const first = held[0]
    if (!first) throw new Error('no held socket')
    const firstClosed = closedAfter(first)
    first.destroy()
    await firstClosed
    const again = await waitFor(
      async () => {
        const socket = track(await rawConnect(portOf(b.url), '127.0.0.2'))
        socket.on('error', () => undefined)
        return rawLogin(
          socket,
          connectPacket({
            clientId: 'again',
            clean: true,
            username: 'gateway',
            password: GATEWAY_SECRET,
          }),
        )
          .then((code) => code === 0)
          .catch(() => false)
      },
      { what: 'a connection from 127.0.0.2 admitted again' },
    )
    expect(again).toBe(true)
  }, 60_000)

  it('backs off wrong passwords per address, doubling, forgets no failure on a success, refuses during the wait without reading the secret, and logs no part of any password', async () => {
    const lines: string[] = []
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) })
    let now = 1_000_000
    const b = await broker({ limits: DEFAULT_BROKER_LIMITS, log, monotonicNow: () => now })
    const port = portOf(b.url)
    const login = async (
      password: string,
      address = '127.0.0.2',
      will?: { topic: string; payload: string },
    ): Promise<number> => {
      const socket = track(await rawConnect(port, address))
      socket.on('error', () => undefined)
      const packet = connectPacket({
        clientId: `c-${address}`,
        clean: true,
        username: 'gateway',
        password,
        ...(will ? { will } : {}),
      })
      return rawLogin(socket, packet)
    }

    // Five wrong passwords are answered "bad user name or password" (4), with a will or without …
    const codes: number[] = []
    const will = { topic: 'relay/gpus/gpu-1/state', payload: '{}' }
    for (const [i, wrong] of WRONG_SECRETS.entries()) {
      codes.push(await login(wrong, '127.0.0.2', i % 2 === 0 ? will : undefined))
    }
    expect(codes).toEqual([4, 4, 4, 4, 4])
    // … then the address waits 1 s: even the right password gets "not authorized" (5) at once.
    expect(await login(GATEWAY_SECRET)).toBe(5)
    // Other addresses are not slowed: the honest client on 127.0.0.1 gets in and gets its messages.
    expect(await login(GATEWAY_SECRET, '127.0.0.1')).toBe(0)
    expect((await honestRoundTrip(b.url)).received).toBe(20)

    // Each further failure doubles the wait: 2 s, then 4 s.
    now += 1_001
    expect(await login(WRONG_SECRETS[0] ?? '')).toBe(4)
    now += 1_990
    expect(await login(GATEWAY_SECRET)).toBe(5)
    now += 20
    expect(await login(WRONG_SECRETS[1] ?? '')).toBe(4)
    now += 3_990
    expect(await login(GATEWAY_SECRET)).toBe(5)
    // Once the wait is over the right password gets in, but that forgets no failure: the next
    // wrong password waits 8 s at once (no "four wrong, one right, repeat" at full speed).
    now += 20
    expect(await login(GATEWAY_SECRET)).toBe(0)
    expect(await login(WRONG_SECRETS[2] ?? '')).toBe(4)
    expect(await login(GATEWAY_SECRET)).toBe(5)
    now += 7_990
    expect(await login(GATEWAY_SECRET)).toBe(5)
    // Failures expire only by their 10-minute window.
    now += 10 * 60_000 + 20
    for (const wrong of WRONG_SECRETS.slice(0, 4)) expect(await login(wrong)).toBe(4)
    expect(await login(GATEWAY_SECRET)).toBe(0)

    const refused = lines.filter((line) => line.includes('"MQTT login refused"'))
    expect(refused.length).toBeGreaterThanOrEqual(11)
    for (const line of refused) expect(line).toContain('"address":"127.0.0.2"')
    const output = lines.join('')
    for (const secret of [GATEWAY_SECRET, ...WRONG_SECRETS]) {
      for (let i = 0; i + 4 <= secret.length; i++) {
        expect(output, `log holds part of a password: ${secret.slice(i, i + 4)}`).not.toContain(
          secret.slice(i, i + 4),
        )
      }
    }
  }, 60_000)

  it('logs a refused login with its client id clipped, and a user name only if it is a known login name', async () => {
    const lines: string[] = []
    const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) })
    const b = await broker({ limits: DEFAULT_BROKER_LIMITS, log })
    const refusedLine = async (packet: Buffer): Promise<Record<string, unknown>> => {
      const before = lines.length
      const socket = track(await rawConnect(portOf(b.url), '127.0.0.3'))
      socket.on('error', () => undefined)
      expect(await rawLogin(socket, packet)).toBe(4)
      const line = lines.slice(before).find((l) => l.includes('"MQTT login refused"'))
      expect(line, 'a refused-login line').toBeDefined()
      console.log(`refused login logged in ${String(line?.length)} B`)
      expect(line?.length).toBeLessThan(1_000)
      return JSON.parse(line ?? '{}') as Record<string, unknown>
    }
    const longId = 'x'.repeat(60_000)
    const known = await refusedLine(
      connectPacket({ clientId: longId, clean: true, username: 'gateway', password: 'nope' }),
    )
    expect(known).toMatchObject({ clientId: `${'x'.repeat(64)}…`, username: 'gateway' })
    // A password typed in the user name field: only its length reaches the log.
    const typo = WRONG_SECRETS[3] ?? ''
    const unknown = await refusedLine(
      connectPacket({ clientId: 'typo', clean: true, username: typo, password: 'nope' }),
    )
    expect(unknown).toMatchObject({ clientId: 'typo', unknownUser: true, usernameLength: 12 })
    expect(unknown).not.toHaveProperty('username')
    expect(lines.join('')).not.toContain(typo.slice(0, 4))
  })

  it('keeps a client whose queued backlog takes longer than the CONNECT deadline to send', async () => {
    const deadlineMs = 1_000
    const b = await broker({ limits: { ...DEFAULT_BROKER_LIMITS, connectTimeoutMs: deadlineMs } })
    const credentials = { username: 'gateway', password: GATEWAY_SECRET }
    // A persistent session with 12 MB queued for it while it is away.
    const away = await mqtt.connectAsync(b.url, {
      clientId: 'backlog',
      clean: false,
      ...credentials,
    })
    await away.subscribeAsync('relay/backlog', { qos: 1 })
    await endClient(away)
    const pub = await mqtt.connectAsync(b.url, { clientId: 'backlog-pub', ...credentials })
    onTestFinished(() => endClient(pub, true))
    const total = 3_000
    await Promise.all(
      Array.from({ length: total }, () =>
        publish(pub, { topic: 'relay/backlog', payload: Buffer.alloc(4 * 1024), qos: 1 }),
      ),
    )
    // Back, it reads nothing for twice the deadline after its CONNACK, then everything.
    const socket = track(await rawConnect(portOf(b.url)))
    socket.on('error', () => undefined)
    const closed = closedAfter(socket)
    const code = await rawLogin(
      socket,
      connectPacket({ clientId: 'backlog', clean: false, ...credentials }),
    )
    expect(code).toBe(0)
    const pausedAt = performance.now()
    await waitFor(() => performance.now() - pausedAt > 2 * deadlineMs, { what: 'a slow reader' })
    const counts = countPackets(socket)
    socket.resume()
    await waitFor(() => (counts.get(3) ?? 0) >= total || socket.destroyed, {
      timeoutMs: 30_000,
      what: 'the backlog',
    })
    expect(counts.get(3)).toBe(total)
    expect(await Promise.race([closed, Promise.resolve(-1)])).toBe(-1)
  }, 60_000)

  it('lets a logged-in client stay past the CONNECT deadline on TCP, TLS, ws and wss', async () => {
    const deadlineMs = 1_000
    const limits = { ...DEFAULT_BROKER_LIMITS, connectTimeoutMs: deadlineMs }
    const plain = await broker({ limits })
    const secure = await broker({ limits, tls: await tlsFiles() })
    const urls = [plain.url, plain.wsUrl, secure.tlsUrl, secure.wsUrl]
    let closes = 0
    const clients = await Promise.all(
      urls.map(async (url, i) => {
        const client = await mqtt.connectAsync(url ?? '', {
          clientId: `stays-${String(i)}`,
          username: 'gateway',
          password: GATEWAY_SECRET,
          reconnectPeriod: 0,
          rejectUnauthorized: false,
        })
        onTestFinished(() => endClient(client, true))
        client.on('close', () => closes++)
        return client
      }),
    )
    const since = performance.now()
    await waitFor(() => performance.now() - since > 2 * deadlineMs, { what: 'twice the deadline' })
    expect(closes).toBe(0)
    expect(clients.map((client) => client.connected)).toEqual([true, true, true, true])
    for (const client of clients) await client.subscribeAsync('relay/stay', { qos: 1 })
  }, 30_000)

  it('keeps apart two connections from one source port to the TCP and the WebSocket listener', async () => {
    const deadlineMs = 1_000
    const b = await broker({ limits: { ...DEFAULT_BROKER_LIMITS, connectTimeoutMs: deadlineMs } })
    const sourcePort = await freePort()
    const from = { host: '127.0.0.1', localAddress: '127.0.0.1', localPort: sourcePort }
    const opened = async (port: number): Promise<Socket> => {
      const socket = track(netConnect({ ...from, port }))
      socket.on('error', () => undefined)
      await new Promise((resolve) => socket.once('connect', resolve))
      return socket
    }
    // Accepted first on the WebSocket listener, then from the same port on the TCP one, which
    // says nothing: the WebSocket stream looks its ticket up only after its upgrade.
    const wsSocket = await opened(portOf(b.wsUrl))
    const silent = await opened(portOf(b.url))
    const silentClosed = closedAfter(silent)
    // The TCP listener accepts in order: once a later client there is in, the silent one is admitted.
    await endClient(
      await mqtt.connectAsync(b.url, {
        clientId: 'after-silent',
        username: 'gateway',
        password: GATEWAY_SECRET,
        reconnectPeriod: 0,
      }),
    )
    const ws = track(new WebSocket(b.wsUrl ?? '', 'mqtt', { createConnection: () => wsSocket }))
    ws.on('error', () => undefined)
    let wsClosed = false
    ws.on('close', () => (wsClosed = true))
    const replies: Buffer[] = []
    ws.on('message', (data: Buffer) => replies.push(data))
    await new Promise((resolve) => ws.once('open', resolve))
    ws.send(
      connectPacket({
        clientId: 'same-port-ws',
        clean: true,
        username: 'gateway',
        password: GATEWAY_SECRET,
      }),
    )
    await waitFor(() => Buffer.concat(replies).length >= 4, { what: 'the CONNACK over ws' })
    expect(Buffer.concat(replies).subarray(0, 4)).toEqual(Buffer.from([0x20, 0x02, 0x00, 0x00]))

    // The silent one is dropped at its deadline; the logged-in one stays past its own and answers.
    const silentMs = await Promise.race([
      silentClosed,
      waitFor(() => wsClosed, { timeoutMs: 3 * deadlineMs, what: 'either closed' })
        .then(() => Number.NaN)
        .catch(() => Number.POSITIVE_INFINITY),
    ])
    console.log(
      `one source port, two listeners: silent TCP connection closed after ${silentMs.toFixed(0)} ms ` +
        `(deadline ${String(deadlineMs)} ms); logged-in WebSocket closed: ${String(wsClosed)}`,
    )
    expect(silentMs).toBeLessThan(deadlineMs + 1_000)
    expect(wsClosed).toBe(false)
    replies.length = 0
    ws.send(Buffer.from([0xc0, 0x00])) // PINGREQ
    await waitFor(() => Buffer.concat(replies).equals(Buffer.from([0xd0, 0x00])), {
      what: 'the PINGRESP over ws',
    })
  }, 30_000)
})
