import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { endClient } from '../../lib/mqtt.js'
import { startChildBroker } from '../helpers/child-process.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('the broker killed with SIGKILL', () => {
  it('keeps 1,000 messages queued for an offline client, their order, its subscription and retained messages', async () => {
    const dir = await tempDir('broker-kill')
    const first = await startChildBroker({ BROKER_PORT: '0', BROKER_DATA_DIR: dir })

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
    await first.child.kill9()

    const port = new URL(first.url).port
    const second = await startChildBroker({ BROKER_PORT: port, BROKER_DATA_DIR: dir })
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
