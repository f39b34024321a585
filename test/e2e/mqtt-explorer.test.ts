/**
 * What an admin sees in MQTT Explorer (README "MQTT Explorer"). Connected the way MQTT Explorer
 * connects: the admin login, a clean session, one SUBSCRIBE of `#` and `$SYS/#` at QoS 0, every
 * message drawn into a tree by topic (an empty retained payload removes its node).
 */
import { randomUUID } from 'node:crypto'
import mqtt, { type MqttClient } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { GatewayConfig } from '../../gateway/config.js'
import { endClient } from '../../lib/mqtt.js'
import { GpuState, QueueSnapshot, TaskSnapshot } from '../../protocol/index.js'
import { finalStatus, submitFresh } from '../helpers/pc.js'
import {
  TEST_SECRETS,
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

interface Explorer {
  readonly client: MqttClient
  /** topic → the last payload, as text. */
  readonly tree: Map<string, string>
  /** SUBACK return codes of `#` and `$SYS/#`. */
  readonly granted: number[]
}

/** A client that keeps every topic it receives, subscribed to `filters` (default: MQTT Explorer's). */
async function explore(
  url: string,
  login: { username?: string; password?: string } = {
    username: 'admin',
    password: TEST_SECRETS.admin,
  },
  filters = ['#', '$SYS/#'],
): Promise<Explorer> {
  const client = await mqtt.connectAsync(url, {
    clientId: `mqtt-explorer-${randomUUID().slice(0, 8)}`,
    clean: true,
    protocolVersion: 4,
    reconnectPeriod: 0,
    ...login,
  })
  onTestFinished(() => endClient(client, true))
  const tree = new Map<string, string>()
  client.on('message', (topic, payload) => {
    if (payload.length === 0) tree.delete(topic)
    else tree.set(topic, payload.toString())
  })
  const grants = await client.subscribeAsync(
    Object.fromEntries(filters.map((f) => [f, { qos: 0 }])),
  )
  return { client, tree, granted: grants.map((g) => g.qos) }
}

const json = (tree: Map<string, string>, topic: string): unknown => {
  const text = tree.get(topic)
  return text === undefined ? undefined : (JSON.parse(text) as unknown)
}

async function relay(dir: string, overrides: Partial<GatewayConfig> = {}) {
  const gateway = await startTestGateway(dir, {
    broker: {
      host: '127.0.0.1',
      port: 0,
      wsPort: 0,
      persistencePath: `${dir}/broker.sqlite`,
      tls: null,
      sysIntervalMs: 100,
    },
    ...overrides,
  })
  const gpu = await startTestGpu(dir, 2_000)
  await startTestBridge(dir, { gateway, gpu })
  return gateway
}

describe('MQTT Explorer with the admin login', () => {
  it('shows each GPU, the running task, the queue, the power topic and $SYS figures, over TCP and WebSocket', async () => {
    const dir = await tempDir('explorer')
    const gateway = await relay(dir)
    const id = await submitFresh(gateway.url)
    const wsUrl = gateway.mqttWsUrl ?? ''
    expect(wsUrl).toMatch(/^ws:\/\//)
    for (const url of [gateway.mqttUrl, wsUrl]) {
      const { tree, granted } = await explore(url)
      expect(granted).toEqual([0, 0])
      const task = await waitFor(
        () => {
          const snapshot = TaskSnapshot.safeParse(json(tree, `relay/tasks/${id}`))
          return snapshot.success && snapshot.data.state === 'processing' ? snapshot.data : null
        },
        { what: `the running task in the tree (${url})` },
      )
      expect(task).toMatchObject({ taskId: id, gpuId: 'gpu-1', attempt: 1 })
      expect(GpuState.parse(json(tree, 'relay/gpus/gpu-1/state'))).toMatchObject({
        online: true,
        capacity: 1,
      })
      const queue = await waitFor(() => QueueSnapshot.safeParse(json(tree, 'relay/queue')).data, {
        what: 'the queue',
      })
      expect(queue).toMatchObject({ v: 1, gpusOnline: 1 })
      // The broker's figures, readable as Mosquitto's: the gateway, the bridge, this explorer.
      const figures = ['clients/connected', 'uptime', 'version', 'messages/received']
      await waitFor(() => figures.every((f) => tree.has(`$SYS/broker/${f}`)), {
        what: '$SYS figures',
      })
      expect(Number(tree.get('$SYS/broker/clients/connected'))).toBeGreaterThanOrEqual(3)
      expect(tree.get('$SYS/broker/uptime')).toMatch(/^\d+ seconds$/)
      expect(tree.get('$SYS/broker/version')).toMatch(/^gpu-relay \d+\.\d+\.\d+ \(aedes /)
      expect(Number(tree.get('$SYS/broker/messages/received'))).toBeGreaterThan(0)
      const sent = await waitFor(() => Number(tree.get('$SYS/broker/messages/sent')), {
        what: 'messages/sent',
      })
      // Figures move: this explorer's own deliveries are counted.
      await waitFor(() => Number(tree.get('$SYS/broker/messages/sent')) > sent, {
        what: 'messages/sent grows',
      })
    }

    // A power request on the power topic (the gateway's login publishes it) shows up live.
    const { tree } = await explore(gateway.mqttUrl)
    const gatewayLogin = await testMqttClient(gateway.mqttUrl, 'gateway')
    const power = { v: 1, action: 'start', reason: 'queued', requestId: 'r1', at: 'now' }
    await gatewayLogin.publishAsync('relay/power/gpu-1', JSON.stringify(power), { qos: 1 })
    await waitFor(() => tree.has('relay/power/gpu-1'), { what: 'the power message' })
    expect(json(tree, 'relay/power/gpu-1')).toEqual(power)

    // Once the task ends, its node goes (the retained snapshot is cleared): active tasks only.
    expect((await finalStatus(gateway.url, id)).status).toBe('done')
    await waitFor(() => !tree.has(`relay/tasks/${id}`), { what: 'the finished task removed' })
    const later = await explore(gateway.mqttUrl)
    await waitFor(() => later.tree.has('relay/queue'), { what: 'a new explorer reads the queue' })
    expect([...later.tree.keys()].filter((t) => t.startsWith('relay/tasks/'))).toEqual([])
  })

  it("never shows another client's traffic outside the relay's root", async () => {
    const dir = await tempDir('explorer-hidden')
    // Development mode: anonymous clients may publish anywhere (the only way to get there).
    const gateway = await relay(dir, { mqttAllowAnonymous: true })
    const admin = await explore(gateway.mqttUrl)
    const anonymous = await explore(gateway.mqttUrl, {}, ['#'])
    const outsider = await mqtt.connectAsync(gateway.mqttUrl, { reconnectPeriod: 0 })
    onTestFinished(() => endClient(outsider, true))
    for (const topic of ['private/chat', 'relayx/secret', 'relay-other/x']) {
      await outsider.publishAsync(topic, 'not for admins', { qos: 1, retain: true })
    }
    await outsider.publishAsync('relay/probe', 'last', { qos: 1 })
    // Both were sent everything in order; the anonymous one shows it was published.
    await waitFor(() => admin.tree.has('relay/probe') && anonymous.tree.has('relay/probe'), {
      what: 'the probe',
    })
    expect(anonymous.tree.get('private/chat')).toBe('not for admins')
    const outside = (t: string): boolean => !t.startsWith('relay/') && !t.startsWith('$SYS/')
    expect([...admin.tree.keys()].filter(outside)).toEqual([])
    // [MQTT-4.7.2-1] `#` alone never reads `$SYS`, retained figures included.
    expect([...anonymous.tree.keys()].filter((t) => t.startsWith('$'))).toEqual([])
    // Retained outside the root: a new explorer does not read them either.
    const later = await explore(gateway.mqttUrl)
    await waitFor(() => later.tree.has('relay/queue'), { what: 'the retained queue' })
    expect([...later.tree.keys()].filter(outside)).toEqual([])
    // A filter that can only match hidden topics is refused outright.
    // (SUBACK 0x80, which mqtt.js reports as an error).
    await expect(later.client.subscribeAsync('private/#', { qos: 0 })).rejects.toMatchObject({
      packet: { granted: [128] },
    })
  })

  it('is read-only: a publish by the admin closes its connection and changes nothing', async () => {
    const dir = await tempDir('explorer-publish')
    const gateway = await relay(dir)
    for (const url of [gateway.mqttUrl, gateway.mqttWsUrl ?? '']) {
      const { client, tree } = await explore(url)
      await waitFor(() => tree.has('relay/queue'), { what: 'the queue' })
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
      client.publish('relay/queue', JSON.stringify({ v: 1, forged: true }), {
        qos: 1,
        retain: true,
      })
      await closed
      const fresh = await explore(url)
      await waitFor(() => fresh.tree.has('relay/queue'), { what: 'the queue again' })
      expect(fresh.tree.get('relay/queue')).not.toContain('forged')
    }
  })
})
