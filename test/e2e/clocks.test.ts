import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { publish } from '../../lib/mqtt.js'
import {
  call,
  finalStatus,
  media,
  submitFresh,
  submitTask,
  taskStatus,
  upload,
} from '../helpers/pc.js'
import {
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('the four clocks', () => {
  it('expires a task not started within the queue TTL, and never runs it even if its message arrives later', async () => {
    const dir = await tempDir('ttl')
    const gateway = await startTestGateway(dir, { queueTtlMs: 400 })
    const gpu = await startTestGpu(dir, 200)
    const spy = await testMqttClient(gateway.mqttUrl, 'gateway')
    const captured = new Promise<Buffer>((resolve) => spy.once('message', (_t, p) => resolve(p)))
    await spy.subscribeAsync('relay/offers/heygem', { qos: 1 }) // offered to every GPU

    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const id = String(
      (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
    )
    const message = await captured
    expect((await finalStatus(gateway.url, id)).status).toBe('expired')

    const bridge = await startTestBridge(dir, { gateway, gpu })
    await waitFor(() => bridge.isConnected(), { what: 'bridge connected' })
    const refused = new Promise<void>((resolve) => {
      spy.on('message', (topic, payload) => {
        if (topic.endsWith('/control') && payload.toString().includes('claim-refused')) resolve()
      })
    })
    await spy.subscribeAsync('relay/gpus/gpu-1/control', { qos: 1 })
    await publish(spy, { topic: 'relay/gpus/gpu-1/tasks', payload: message, qos: 1 })
    await refused
    expect(gpu.stats.submissions).toHaveLength(0)
    expect((await taskStatus(gateway.url, id)).status).toBe('expired')
  })

  it('retries a task that runs past the execution timeout, then fails it with a clear message', async () => {
    const dir = await tempDir('exec-timeout')
    const gateway = await startTestGateway(dir, { execTimeoutMs: 800, maxAttempts: 2 })
    const gpu = await startTestGpu(dir, 60_000)
    await startTestBridge(dir, { gateway, gpu })
    const id = await submitFresh(gateway.url)
    const final = await finalStatus(gateway.url, id)
    expect(final.status).toBe('error')
    expect(String(final.error_msg)).toContain('执行超时')
    expect(gateway.store.get(id)?.attempt).toBe(2)
  })

  it('treats a task whose progress stops moving (the HeyGem hang) as failed: retried, then error', async () => {
    const dir = await tempDir('stall')
    const gateway = await startTestGateway(dir, { stallTimeoutMs: 1_000, maxAttempts: 2 })
    const gpu = await startTestGpu(dir, 600)
    gpu.hangNext(20) // the service's one slot is stuck, as with the real hang
    await startTestBridge(dir, { gateway, gpu })
    const id = await submitFresh(gateway.url)
    const final = await finalStatus(gateway.url, id)
    expect(final.status).toBe('error')
    expect(String(final.error_msg)).toContain('没有变化')
    expect(gateway.store.get(id)?.attempt).toBe(2)
    const retries = gateway.outbox.ofTask(id).filter((e) => e.note?.startsWith('retry:'))
    expect(retries).toHaveLength(1)
  })

  it('purges finished tasks past retention with their files, and clears their retained topics', async () => {
    const dir = await tempDir('retention')
    const gateway = await startTestGateway(dir, { retentionMs: 1_500 })
    const gpu = await startTestGpu(dir, 200)
    await startTestBridge(dir, { gateway, gpu })
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const id = String(
      (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
    )
    expect((await finalStatus(gateway.url, id)).status).toBe('done')

    await waitFor(
      async () => (await call(gateway.url, `/api/heygem/task/status?task_id=${id}`)).status === 404,
      {
        what: 'the task purged',
        timeoutMs: 10_000,
      },
    )
    const pool = join(dir, 'gateway', 'files')
    await waitFor(
      async () =>
        (await readdir(pool, { recursive: true })).filter((f) => /[0-9a-f]{32}$/.test(f)).length ===
        0,
      {
        what: 'inputs and result removed',
      },
    )
    const checked = await call(gateway.url, '/api/heygem/check_files', {
      files: [{ hash: audio, ext: '.wav' }],
    })
    expect(checked.env.data).toEqual({ [audio]: false })

    // The retained snapshot is gone: a marker published after subscribing arrives first.
    const reader = await testMqttClient(gateway.mqttUrl, 'gateway')
    const first = new Promise<string>((resolve) =>
      reader.once('message', (topic) => resolve(topic)),
    )
    await reader.subscribeAsync([`relay/tasks/${id}`, 'relay/test/marker'], { qos: 1 })
    await publish(reader, { topic: 'relay/test/marker', payload: 'x', qos: 1 })
    expect(await first).toBe('relay/test/marker')
  })
})
