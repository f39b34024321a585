import { join } from 'node:path'
import Database from 'better-sqlite3'
import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { endClient } from '../../lib/mqtt.js'
import { startChildBroker } from '../helpers/child-process.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { gpuPresence } from '../helpers/gateway-view.js'
import {
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('the broker killed with SIGKILL', () => {
  it('keeps 1,000 messages queued for an offline client, their order, its subscription and retained messages', async () => {
    const dir = await tempDir('broker-kill')
    const first = await startChildBroker({
      BROKER_PORT: '0',
      BROKER_DATA_DIR: dir,
      MQTT_ALLOW_ANONYMOUS: 'true',
    })

    // A GPU that subscribed once and went away: its session is kept.
    const gpu = await mqtt.connectAsync(first.url, { clientId: 'gpu-offline', clean: false })
    await gpu.subscribeAsync('relay/gpus/gpu-offline/tasks', { qos: 1 })
    await endClient(gpu)

    const publisher = await mqtt.connectAsync(first.url, { clientId: 'publisher' })
    const total = 1_000
    await Promise.all(
      Array.from({ length: total }, (_, i) =>
        publisher.publishAsync('relay/gpus/gpu-offline/tasks', String(i), { qos: 1 }),
      ),
    )
    await publisher.publishAsync('relay/queue', '{"queued":1000}', { qos: 1, retain: true })
    await endClient(publisher, true)
    // Aedes acknowledges a QoS 1 PUBLISH before it stores it (lib/handlers/publish.js), so wait
    // until the broker's file holds everything, then kill it.
    const file = new Database(join(dir, 'broker.sqlite'), { readonly: true })
    onTestFinished(() => {
      file.close()
    })
    const stored = () => ({
      queued: file
        .prepare<[], { n: number }>(
          `SELECT COUNT(*) AS n FROM outgoing WHERE client_id = 'gpu-offline'`,
        )
        .get()?.n,
      retained: file
        .prepare<[], { n: number }>(
          `SELECT COUNT(*) AS n FROM retained WHERE topic = 'relay/queue'`,
        )
        .get()?.n,
    })
    await waitFor(() => stored().queued === total && stored().retained === 1, {
      what: 'all stored',
    })
    await first.child.kill9()

    const port = new URL(first.url).port
    const second = await startChildBroker({
      BROKER_PORT: port,
      BROKER_DATA_DIR: dir,
      MQTT_ALLOW_ANONYMOUS: 'true',
    })
    const received: string[] = []
    const back = mqtt.connect(second.url, { clientId: 'gpu-offline', clean: false })
    onTestFinished(() => endClient(back))
    back.on('message', (_t, payload) => received.push(payload.toString()))
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve) =>
      back.once('connect', resolve),
    )
    expect(connack.sessionPresent).toBe(true)
    await waitFor(() => received.length >= total, {
      what: 'all queued messages',
      timeoutMs: 20_000,
    })
    expect(received).toEqual(Array.from({ length: total }, (_, i) => String(i)))

    // Its subscription was restored with the session: a new message arrives without subscribing.
    const later = await mqtt.connectAsync(second.url, { clientId: 'publisher-2' })
    onTestFinished(() => endClient(later))
    await later.publishAsync('relay/gpus/gpu-offline/tasks', 'after-restart', { qos: 1 })
    await waitFor(() => received.includes('after-restart'), { what: 'a message after the restart' })

    // Retained messages survived.
    const retained = new Promise<string>((resolve) =>
      later.once('message', (_t, p) => resolve(p.toString())),
    )
    await later.subscribeAsync('relay/queue', { qos: 1 })
    expect(await retained).toBe('{"queued":1000}')
  })
})

describe('wills of clients connected when the broker died', () => {
  /** The restarted broker sweeps wills of dead brokers every 4 heartbeats; wait for 5. */
  async function afterWillSweep(url: string): Promise<void> {
    const watcher = await testMqttClient(url, 'admin')
    let beats = 0
    watcher.on('message', () => beats++)
    await watcher.subscribeAsync('$SYS/+/heartbeat', { qos: 0 })
    await waitFor(() => beats >= 5, { what: '5 broker heartbeats', timeoutMs: 15_000 })
  }

  async function setup(name: string) {
    const dir = await tempDir(name)
    const env = { BROKER_DATA_DIR: dir, BROKER_HEARTBEAT_MS: '300' }
    const first = await startChildBroker({ ...env, BROKER_PORT: '0' })
    const proxy = await startTcpProxy(Number(new URL(first.url).port))
    onTestFinished(() => proxy.close())
    const gateway = await startTestGateway(dir, { mqttUrl: first.url })
    const gpu = await startTestGpu(dir)
    const bridge = await startTestBridge(dir, {
      gateway: { url: gateway.url, mqttUrl: proxy.url('mqtt') },
      gpu,
    })
    const oldEpoch = await waitFor(
      async () => {
        const p = await gpuPresence(gateway.url)
        return p.online ? p.epoch : 0
      },
      { what: 'GPU online' },
    )
    const restart = async () => {
      await first.child.kill9()
      proxy.cut()
      return startChildBroker({ ...env, BROKER_PORT: new URL(first.url).port })
    }
    return { gateway, bridge, proxy, oldEpoch, restart }
  }

  it('a GPU back before the sweep keeps its new epoch: its old will is replaced, never published', async () => {
    const { gateway, bridge, oldEpoch, restart } = await setup('wills-back')
    const second = await restart()
    await waitFor(
      async () => {
        const p = await gpuPresence(gateway.url)
        return p.online && p.epoch > oldEpoch
      },
      { what: 'GPU back with a newer epoch', timeoutMs: 15_000 },
    )
    await afterWillSweep(second.url)
    expect(await gpuPresence(gateway.url)).toMatchObject({ online: true, epoch: bridge.epoch() })
  })

  it('a GPU still away at the sweep is marked offline by its late will, and online again when it returns', async () => {
    const { gateway, bridge, proxy, oldEpoch, restart } = await setup('wills-away')
    proxy.setRefusing(true)
    const second = await restart()
    const watcher = await testMqttClient(second.url, 'admin')
    const states: { online: boolean; epoch: number }[] = []
    watcher.on('message', (_t, p) =>
      states.push(JSON.parse(p.toString()) as { online: boolean; epoch: number }),
    )
    await watcher.subscribeAsync('relay/gpus/gpu-1/state', { qos: 1 })
    await waitFor(() => states.some((s) => !s.online && s.epoch === oldEpoch), {
      what: 'the old will published by the restarted broker',
      timeoutMs: 15_000,
    })
    await waitFor(async () => !(await gpuPresence(gateway.url)).online, { what: 'GPU offline' })
    proxy.setRefusing(false)
    await waitFor(
      async () => {
        const p = await gpuPresence(gateway.url)
        return p.online && p.epoch === bridge.epoch() && p.epoch > oldEpoch
      },
      { what: 'GPU online again', timeoutMs: 15_000 },
    )
  })
})
