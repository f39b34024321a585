import { describe, expect, it, onTestFinished } from 'vitest'
import { publish } from '../../lib/mqtt.js'
import { gpuPresence } from '../helpers/gateway-view.js'
import {
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('GPU presence', () => {
  it('shows a dropped bridge offline within the keep-alive window, online again with a new epoch, and ignores a stale will', async () => {
    const dir = await tempDir('presence')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir)
    const proxy = await startTcpProxy(Number(new URL(gateway.mqttUrl).port))
    onTestFinished(() => proxy.close())
    const keepaliveS = 2
    const bridge = await startTestBridge(
      dir,
      { gateway: { url: gateway.url, mqttUrl: proxy.url('mqtt') }, gpu },
      {
        keepaliveS,
        heartbeatMs: 60_000,
      },
    )
    const firstEpoch = await waitFor(
      async () => {
        const p = await gpuPresence(gateway.url)
        return p.online ? p.epoch : 0
      },
      { what: 'GPU online' },
    )

    // The link goes silent without closing (only keep-alive can tell), and the bridge cannot get
    // back in for now: the broker's keep-alive (1.5 × keepalive) fires the will.
    proxy.setRefusing(true)
    proxy.stall()
    await waitFor(async () => !(await gpuPresence(gateway.url)).online, {
      what: 'GPU offline after the link went silent',
      timeoutMs: keepaliveS * 1500 + 1500,
    })

    // It reconnects: a new epoch, online again.
    proxy.cut()
    proxy.setRefusing(false)
    const secondEpoch = await waitFor(
      async () => {
        const p = await gpuPresence(gateway.url)
        return p.online && p.epoch > firstEpoch ? p.epoch : 0
      },
      { what: 'GPU back online with a newer epoch' },
    )
    expect(bridge.epoch()).toBe(secondEpoch)

    // A Last Will of the old connection arriving late (aedes #754) must not flip it back.
    // Published as a broker would publish a late will: only the gateway's login may write there.
    const admin = await testMqttClient(gateway.mqttUrl, 'gateway')
    const stateTopic = 'relay/gpus/gpu-1/state'
    await publish(admin, {
      topic: stateTopic,
      payload: JSON.stringify({ v: 1, online: false, epoch: firstEpoch }),
      qos: 1,
      retain: true,
    })
    // The gateway has processed it once a message published after it has come back.
    const marker = 'relay/test/marker'
    await admin.subscribeAsync(marker, { qos: 1 })
    const echoed = new Promise<void>((resolve) => admin.once('message', () => resolve()))
    await publish(admin, { topic: marker, payload: 'x', qos: 1 })
    await echoed
    expect(await gpuPresence(gateway.url)).toMatchObject({ online: true, epoch: secondEpoch })

    // The bridge puts its own retained state back over the stale will, for admins and restarts.
    const retained = await testMqttClient(gateway.mqttUrl, 'admin')
    await waitFor(
      async () => {
        const payload = await new Promise<string>((resolve) => {
          retained.once('message', (_t, p) => resolve(p.toString()))
          void retained.subscribeAsync(stateTopic, { qos: 1 })
        })
        await retained.unsubscribeAsync(stateTopic)
        const state = JSON.parse(payload) as { online: boolean; epoch: number }
        return state.online && state.epoch === secondEpoch
      },
      { what: 'retained state restored by the bridge' },
    )
  })
})

describe('GPU presence on a clean cut', () => {
  it('marks the GPU offline as soon as its connection closes, and back online when it reconnects', async () => {
    const dir = await tempDir('presence-cut')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir)
    const proxy = await startTcpProxy(Number(new URL(gateway.mqttUrl).port))
    onTestFinished(() => proxy.close())
    await startTestBridge(dir, { gateway: { url: gateway.url, mqttUrl: proxy.url('mqtt') }, gpu })
    const epoch = await waitFor(
      async () => {
        const p = await gpuPresence(gateway.url)
        return p.online ? p.epoch : 0
      },
      { what: 'GPU online' },
    )
    proxy.setRefusing(true)
    proxy.cut()
    await waitFor(async () => !(await gpuPresence(gateway.url)).online, { what: 'GPU offline' })
    proxy.setRefusing(false)
    await waitFor(
      async () => {
        const p = await gpuPresence(gateway.url)
        return p.online && p.epoch > epoch
      },
      { what: 'GPU online again' },
    )
  })
})
