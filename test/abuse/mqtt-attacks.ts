/**
 * Hostile MQTT connections (docs/design.md §3.9, points 1, 9), each pattern one case, many at once from many
 * loopback addresses: half a CONNECT, silence, wrong and missing logins, a 256 MB length, garbage,
 * another login's client id, an oversized PUBLISH, more connections from one address than the cap,
 * wrong passwords from one address (backoff: then even a right one is refused for a while), and
 * publishes a login may not make.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import mqtt from 'mqtt'
import { endClient } from '../../lib/mqtt.js'
import { bridgeClientId } from '../../protocol/index.js'
import { expectThat, type Ledger } from './cases.js'
import { rawSocket, within, type RawSocket } from './http-raw.js'
import { HUGE_HEADER, connackCode, connectPacket, publishPacket } from './mqtt-raw.js'
import { SECRETS, type AbuseRelay } from './relay-procs.js'

export interface MqttAttackContext {
  readonly relay: AbuseRelay
  readonly ledger: Ledger
  readonly address: (block: number, i: number) => string
  readonly measureRss: <T>(what: string, fn: () => Promise<T>) => Promise<T>
}

async function many(count: number, open: (i: number) => RawSocket): Promise<RawSocket[]> {
  const sockets: RawSocket[] = []
  for (let i = 0; i < count; i++) {
    sockets.push(open(i))
    if (i % 50 === 49) await delay(20)
  }
  return sockets
}

async function closedWithin(sockets: readonly RawSocket[], ms: number): Promise<number> {
  await within(Promise.all(sockets.map((s) => s.closed)), ms)
  const n = sockets.filter((s) => s.closedByServer()).length
  for (const s of sockets) s.destroy()
  return n
}

/** One raw CONNECT from `from`: the CONNACK code (null: none) once the server answered or closed. */
async function connectOnce(
  port: number,
  from: string,
  login: { username: string; password: string },
): Promise<number | null> {
  const { username, password } = login
  const s = rawSocket(port, from, (sock) =>
    sock.write(
      connectPacket({ clientId: `abuse-${randomBytes(4).toString('hex')}`, username, password }),
    ),
  )
  const deadline = Date.now() + 3_000
  while (connackCode(s.received()) === null && !s.closedByServer() && Date.now() < deadline)
    await delay(10)
  const code = connackCode(s.received())
  s.destroy()
  return code
}

export async function mqttAttacks(ctx: MqttAttackContext): Promise<string[]> {
  const { relay, ledger, address } = ctx
  const port = relay.mqtt
  const passwords: string[] = []
  const bad = (): string => {
    const p = `bad-mqtt-pass-${randomBytes(8).toString('hex')}`
    passwords.push(p)
    return p
  }

  const halfConnect = ledger.run(
    {
      area: 'mqtt',
      point: 1,
      name: '300 connections sending half a CONNECT: closed by the CONNECT deadline',
    },
    () =>
      ctx.measureRss('300 half CONNECTs', async () => {
        const half = connectPacket({
          clientId: 'half',
          username: 'admin',
          password: 'x'.repeat(64),
        }).subarray(0, 12)
        const sockets = await many(300, (i) =>
          rawSocket(port, address(50, i), (s) => s.write(half)),
        )
        const n = await closedWithin(sockets, 6_500)
        expectThat(
          n === 300,
          `${String(300 - n)}/300 still open 6.5 s later (MQTT_CONNECT_TIMEOUT_MS 3 s)`,
        )
      }),
  )
  const silent = ledger.run(
    { area: 'mqtt', point: 1, name: '200 silent TCP connections: closed by the CONNECT deadline' },
    async () => {
      const sockets = await many(200, (i) => rawSocket(port, address(51, i)))
      const n = await closedWithin(sockets, 6_500)
      expectThat(n === 200, `${String(200 - n)}/200 still open 6.5 s later`)
    },
  )
  const refusedPattern = async (
    block: number,
    what: string,
    username: string | undefined,
  ): Promise<void> => {
    const sockets = await many(100, (i) =>
      rawSocket(port, address(block, i), (s) =>
        s.write(
          connectPacket({
            clientId: `abuse-${String(block)}-${String(i)}`,
            ...(username === undefined ? {} : { username, password: bad() }),
          }),
        ),
      ),
    )
    await within(Promise.all(sockets.map((s) => s.closed)), 4_000)
    const codes = sockets.map((s) => connackCode(s.received()))
    const closed = sockets.filter((s) => s.closedByServer()).length
    for (const s of sockets) s.destroy()
    const accepted = codes.filter((c) => c === 0).length
    expectThat(accepted === 0, `${String(accepted)} of 100 ${what} accepted`)
    expectThat(closed === 100, `${String(100 - closed)} of 100 ${what} not closed`)
  }
  const wrongGpu = ledger.run(
    { area: 'mqtt', point: 9, name: '100 CONNECTs as gpu-1 with wrong passwords' },
    () => refusedPattern(52, 'wrong passwords', 'gpu-1'),
  )
  const unknownUsers = ledger.run(
    { area: 'mqtt', point: 9, name: '100 CONNECTs as unknown users' },
    () => refusedPattern(53, 'unknown users', `nobody-${randomBytes(3).toString('hex')}`),
  )
  const anonymous = ledger.run(
    { area: 'mqtt', point: 9, name: '100 CONNECTs without credentials' },
    () => refusedPattern(54, 'anonymous CONNECTs', undefined),
  )
  const huge = ledger.run(
    { area: 'mqtt', point: 1, name: '100 connections announcing a 256 MB packet' },
    async () => {
      const sockets = await many(100, (i) =>
        rawSocket(port, address(55, i), (s) => s.write(HUGE_HEADER)),
      )
      const n = await closedWithin(sockets, 6_500)
      expectThat(n === 100, `${String(100 - n)}/100 still open 6.5 s later`)
    },
  )
  const garbage = ledger.run(
    { area: 'mqtt', point: 1, name: '100 connections sending garbage' },
    async () => {
      const sockets = await many(100, (i) =>
        rawSocket(port, address(56, i), (s) => s.write(randomBytes(512))),
      )
      const n = await closedWithin(sockets, 6_500)
      expectThat(n === 100, `${String(100 - n)}/100 still open`)
    },
  )
  await Promise.all([halfConnect, silent, wrongGpu, unknownUsers, anonymous, huge, garbage])

  await ledger.run(
    { area: 'mqtt', point: 9, name: "the gateway's client id taken with the admin login" },
    async () => {
      const s = rawSocket(port, address(57, 1), (sock) =>
        sock.write(
          connectPacket({
            clientId: 'gpu-relay-gateway',
            username: 'admin',
            password: SECRETS.admin,
          }),
        ),
      )
      await within(s.closed, 3_000)
      const code = connackCode(s.received())
      s.destroy()
      expectThat(code !== 0, 'accepted')
    },
  )
  await ledger.run(
    { area: 'mqtt', point: 9, name: "gpu-1's bridge client id taken with gpu-2's login" },
    async () => {
      const s = rawSocket(port, address(57, 2), (sock) =>
        sock.write(
          connectPacket({
            clientId: bridgeClientId('gpu-1'),
            username: 'gpu-2',
            password: SECRETS.gpu2,
          }),
        ),
      )
      await within(s.closed, 3_000)
      const code = connackCode(s.received())
      s.destroy()
      expectThat(code !== 0, 'accepted')
    },
  )
  await ledger.run(
    {
      area: 'mqtt',
      point: 1,
      name: 'an authenticated PUBLISH of 400 kB (over MQTT_MAX_PAYLOAD_BYTES)',
    },
    async () => {
      const s = rawSocket(port, address(57, 3), (sock) => {
        sock.write(
          connectPacket({
            clientId: 'abuse-big-publisher',
            username: 'gateway',
            password: SECRETS.gateway,
          }),
        )
        sock.write(publishPacket('relay/abuse/big', Buffer.alloc(400 * 1024, 1)))
      })
      const closed = await within(s.closed, 4_000)
      s.destroy()
      expectThat(closed && s.closedByServer(), 'still connected 4 s later')
    },
  )
  await ledger.run(
    {
      area: 'mqtt',
      point: 1,
      name: '100 silent connections from one address: over the cap of 64 closed at once',
    },
    async () => {
      const sockets = await many(100, () => rawSocket(port, address(58, 0)))
      await delay(1_000)
      const cut = sockets.filter((s) => s.closedByServer()).length
      for (const s of sockets) s.destroy()
      expectThat(
        cut >= 36 && cut <= 40,
        `${String(cut)} of 100 closed within 1 s (expected the 36 over the cap)`,
      )
    },
  )

  const from = address(59, 0)
  await ledger.run(
    { area: 'mqtt', point: 9, name: 'five wrong passwords from one address are refused' },
    async () => {
      for (let i = 0; i < 5; i++) {
        const code = await connectOnce(port, from, { username: 'admin', password: bad() })
        expectThat(code === 4 || code === 5, `try ${String(i + 1)}: CONNACK ${String(code)}`)
      }
    },
  )
  await ledger.run(
    {
      area: 'mqtt',
      point: 9,
      name: 'then the right password from that address gets "not authorized" at once',
    },
    async () => {
      const started = performance.now()
      const code = await connectOnce(port, from, { username: 'admin', password: SECRETS.admin })
      expectThat(code === 5, `CONNACK ${String(code)}`)
      expectThat(performance.now() - started < 1_000, 'not at once')
    },
  )
  await ledger.run(
    { area: 'mqtt', point: 9, name: 'another address logs in meanwhile' },
    async () => {
      const code = await connectOnce(port, address(59, 1), {
        username: 'admin',
        password: SECRETS.admin,
      })
      expectThat(code === 0, `CONNACK ${String(code)}`)
    },
  )
  await ledger.run(
    { area: 'mqtt', point: 9, name: 'after the wait the right password works again' },
    async () => {
      await delay(1_500)
      const code = await connectOnce(port, from, { username: 'admin', password: SECRETS.admin })
      expectThat(code === 0, `CONNACK ${String(code)}`)
    },
  )

  const spy = await mqtt.connectAsync(relay.mqttUrl, {
    clientId: `abuse-spy-${randomBytes(3).toString('hex')}`,
    username: 'gateway',
    password: SECRETS.gateway,
  })
  try {
    const seen: string[] = []
    spy.on('message', (topic, payload) => seen.push(`${topic} ${payload.toString()}`))
    await spy.subscribeAsync(['relay/gpus/gpu-1/control', 'relay/gpus/gpu-1/events'], { qos: 1 })
    await ledger.run(
      { area: 'mqtt', point: 9, name: 'the admin login forges a cancel on a GPU control topic' },
      async () => {
        const admin = await mqtt.connectAsync(relay.mqttUrl, {
          clientId: 'abuse-admin-forger',
          username: 'admin',
          password: SECRETS.admin,
          reconnectPeriod: 0,
        })
        admin.on('error', () => undefined)
        admin.publish(
          'relay/gpus/gpu-1/control',
          JSON.stringify({
            v: 1,
            kind: 'cancel',
            taskId: '00000000-0000-4000-8000-000000000000',
            attempt: 1,
            forged: 'admin',
          }),
        )
        await delay(1_000)
        await endClient(admin).catch(() => undefined)
        expectThat(
          !seen.some((m) => m.includes('"forged":"admin"')),
          'the forged cancel was delivered',
        )
      },
    )
    await ledger.run(
      { area: 'mqtt', point: 9, name: "gpu-2's login publishes events as gpu-1" },
      async () => {
        const gpu2 = await mqtt.connectAsync(relay.mqttUrl, {
          clientId: bridgeClientId('gpu-2'),
          username: 'gpu-2',
          password: SECRETS.gpu2,
          reconnectPeriod: 0,
        })
        gpu2.on('error', () => undefined)
        gpu2.publish(
          'relay/gpus/gpu-1/events',
          JSON.stringify({ v: 1, kind: 'done', forged: 'gpu-2' }),
        )
        await delay(1_000)
        await endClient(gpu2).catch(() => undefined)
        expectThat(
          !seen.some((m) => m.includes('"forged":"gpu-2"')),
          'the forged event was delivered',
        )
      },
    )
  } finally {
    await endClient(spy).catch(() => undefined)
  }
  return passwords
}
