import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { QueueSnapshot, TaskSnapshot, GpuState } from '../../protocol/index.js'
import { finalStatus, submitFresh } from '../helpers/pc.js'
import {
  log,
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

async function retained(url: string, topic: string): Promise<unknown> {
  const client = await testMqttClient(url, 'admin')
  const message = new Promise<Buffer>((resolve) => client.once('message', (_t, p) => resolve(p)))
  await client.subscribeAsync(topic, { qos: 1 })
  return JSON.parse((await message).toString()) as unknown
}

/**
 * Is a retained message kept for `topic`? One connection subscribes to it, then to the GPU's
 * state (always retained): the broker answers subscriptions in order, so once the state arrives
 * a retained task message would have arrived before it.
 */
async function hasRetained(url: string, topic: string): Promise<boolean> {
  const client = await testMqttClient(url, 'admin')
  let seen = false
  const state = new Promise<void>((resolve) =>
    client.on('message', (t, p) => {
      if (t === topic && p.length > 0) seen = true
      if (t === 'relay/gpus/gpu-1/state') resolve()
    }),
  )
  await client.subscribeAsync(topic, { qos: 1 })
  await client.subscribeAsync('relay/gpus/gpu-1/state', { qos: 1 })
  await state
  return seen
}

describe('what admins see in MQTT Explorer', () => {
  it('reads retained GPU state, the snapshots of active tasks and the queue as JSON, over MQTT/WebSocket too', async () => {
    const dir = await tempDir('admin')
    const gateway = await startTestGateway(dir, {
      broker: { host: '127.0.0.1', port: 0, wsPort: 0, persistencePath: null, tls: null },
    })
    const gpu = await startTestGpu(dir, 1_500)
    await startTestBridge(dir, { gateway, gpu })
    const id = await submitFresh(gateway.url)

    const wsUrl = gateway.mqttWsUrl ?? ''
    expect(wsUrl).toMatch(/^ws:/)
    // While it runs, its snapshot is retained.
    const snapshot = await waitFor(
      async () => {
        const s = TaskSnapshot.parse(await retained(wsUrl, `relay/tasks/${id}`))
        return s.state === 'processing' ? s : null
      },
      { what: 'processing snapshot' },
    )
    expect(snapshot).toMatchObject({ taskId: id, state: 'processing', gpuId: 'gpu-1' })
    expect(JSON.stringify(snapshot)).not.toContain('"K"') // no owner key
    expect((await finalStatus(gateway.url, id)).status).toBe('done')

    // Once it ended, the retained snapshot is cleared: a new subscriber reads nothing for it.
    await waitFor(async () => !(await hasRetained(wsUrl, `relay/tasks/${id}`)), {
      what: 'the snapshot of the finished task cleared',
    })
    const queue = await waitFor(
      async () => {
        const q = QueueSnapshot.parse(await retained(wsUrl, 'relay/queue'))
        return q.gpusOnline === 1 && q.queued === 0 && q.processing === 0 ? q : null
      },
      { what: 'queue snapshot' },
    )
    expect(queue.v).toBe(1)
    const state = GpuState.parse(await retained(gateway.mqttUrl, 'relay/gpus/gpu-1/state'))
    expect(state).toMatchObject({ online: true, adapter: 'run-server', capacity: 1 })
  })
})

describe('a broker outside the gateway', () => {
  it('works the same when MQTT_URL points to a separately started broker', async () => {
    const dir = await tempDir('external-broker')
    const broker = await startBroker(
      { host: '127.0.0.1', port: 0, wsPort: null, persistencePath: null, auth: null, tls: null },
      { log },
    )
    onTestFinished(() => broker.close())
    const gateway = await startTestGateway(dir, { mqttUrl: broker.url })
    expect(gateway.mqttUrl).toBe(broker.url)
    const gpu = await startTestGpu(dir, 200)
    await startTestBridge(dir, { gateway, gpu })
    const id = await submitFresh(gateway.url)
    expect((await finalStatus(gateway.url, id)).status).toBe('done')
  })
})
