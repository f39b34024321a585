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

describe('what admins see in MQTT Explorer', () => {
  it('reads retained GPU state, task snapshots and the queue as JSON, over MQTT/WebSocket too', async () => {
    const dir = await tempDir('admin')
    const gateway = await startTestGateway(dir, {
      broker: { host: '127.0.0.1', port: 0, wsPort: 0, persistencePath: null, tls: null },
    })
    const gpu = await startTestGpu(dir, 200)
    await startTestBridge(dir, gateway, gpu)
    const id = await submitFresh(gateway.url)
    expect((await finalStatus(gateway.url, id)).status).toBe('done')

    const wsUrl = gateway.mqttWsUrl ?? ''
    expect(wsUrl).toMatch(/^ws:/)
    const snapshot = TaskSnapshot.parse(
      await waitFor(
        async () => {
          const s = TaskSnapshot.parse(await retained(wsUrl, `relay/tasks/${id}`))
          return s.state === 'done' ? s : null
        },
        { what: 'done snapshot' },
      ),
    )
    expect(snapshot).toMatchObject({ taskId: id, state: 'done', progress: 100, gpuId: 'gpu-1' })
    expect(JSON.stringify(snapshot)).not.toContain('"K"') // no owner key
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
    await startTestBridge(dir, gateway, gpu)
    const id = await submitFresh(gateway.url)
    expect((await finalStatus(gateway.url, id)).status).toBe('done')
  })
})
