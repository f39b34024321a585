import { describe, expect, it } from 'vitest'
import { TEXTS } from '../../gpu-bridge/user-text.js'
import { publish } from '../../lib/mqtt.js'
import { finalStatus, media, submitTask, taskStatus, upload } from '../helpers/pc.js'
import {
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/**
 * The GPU service fails the first job with `message`; a second task with the same inputs is queued
 * behind it. Resolves once the first has failed and the second is done (the bridge went on).
 */
async function failThenNext(name: string, message: string) {
  const dir = await tempDir(name)
  const gateway = await startTestGateway(dir)
  const gpu = await startTestGpu(dir, 300)
  gpu.failNext(message)
  await startTestBridge(dir, { gateway, gpu })
  const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
  const video = await upload(gateway.url, media('v', 'video'), '.mp4')
  const failing = String(
    (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
  )
  const next = String(
    (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
  )
  const failed = await finalStatus(gateway.url, failing, 15_000)
  expect(failed.status).toBe('error')
  expect((await finalStatus(gateway.url, next, 15_000)).status).toBe('done')
  return { failed, gpu }
}

describe('failures on the GPU side', () => {
  it('ends a task the GPU service rejects (bad input) as error with the service’s message, without retrying it', async () => {
    const { failed, gpu } = await failThenNext('gpu-error', '未检测到人脸，请更换视频')
    expect(failed.error_msg).toBe('未检测到人脸，请更换视频')
    expect(gpu.stats.submissions).toHaveLength(2)
  })

  it('runs a task again as attempt 2 when the GPU service restarts mid-job and forgets it', async () => {
    const dir = await tempDir('gpu-restart')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 1_500)
    await startTestBridge(dir, { gateway, gpu })
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const id = String(
      (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
    )
    await waitFor(async () => Number((await taskStatus(gateway.url, id)).progress) > 10, {
      what: 'job under way',
    })
    await gpu.restart()
    await waitFor(async () => (await taskStatus(gateway.url, id)).status === 'done', {
      what: 'done after retry',
      timeoutMs: 20_000,
    })
    expect(gpu.stats.submissions).toHaveLength(2)
    expect(gateway.store.get(id)?.attempt).toBe(2)
  })

  it('runs a task once when its message is delivered twice', async () => {
    const dir = await tempDir('duplicate')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 600)
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const id = String(
      (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
    )

    // Capture the task message the gateway published, then deliver a copy of it again.
    const spy = await testMqttClient(gateway.mqttUrl, 'gateway')
    const captured = new Promise<Buffer>((resolve) =>
      spy.once('message', (_t, payload) => resolve(payload)),
    )
    await spy.subscribeAsync('relay/gpus/gpu-1/tasks', { qos: 1 })
    await startTestBridge(dir, { gateway, gpu })
    const payload = await captured
    await waitFor(async () => (await taskStatus(gateway.url, id)).status === 'processing', {
      what: 'processing',
    })
    await publish(spy, { topic: 'relay/gpus/gpu-1/tasks', payload, qos: 1 })
    await publish(spy, { topic: 'relay/gpus/gpu-1/tasks', payload, qos: 1 })
    await waitFor(async () => (await taskStatus(gateway.url, id)).status === 'done', {
      what: 'done',
      timeoutMs: 15_000,
    })
    // A copy after done is refused at the claim as well.
    await publish(spy, { topic: 'relay/gpus/gpu-1/tasks', payload, qos: 1 })
    const refused = new Promise<void>((resolve) => {
      spy.on('message', (topic, p) => {
        if (topic.endsWith('/control') && p.toString().includes('claim-refused')) resolve()
      })
    })
    await spy.subscribeAsync('relay/gpus/gpu-1/control', { qos: 1 })
    await publish(spy, { topic: 'relay/gpus/gpu-1/tasks', payload, qos: 1 })
    await refused
    expect(gpu.stats.submissions).toHaveLength(1)
  })
})

describe('a GPU service error the owner cannot read, or far longer than an event may carry', () => {
  it('ends the task as error with Chinese words instead of a traceback (kept in the log), and the bridge goes on', async () => {
    const traceback = `Traceback (most recent call last):\n${'  File "x.py", line 1, in f\n'.repeat(200)}RuntimeError: CUDA out of memory`
    const { failed } = await failThenNext('english-error', traceback)
    expect(failed.error_msg).toBe(TEXTS.engineInternal)
  })

  it('clips a long Chinese reason to what an event may carry', async () => {
    const reason = `未检测到人脸，${'请检查视频第 1 帧；'.repeat(400)}`
    const { failed } = await failThenNext('long-error', reason)
    const message = String(failed.error_msg)
    expect(message.length).toBeLessThanOrEqual(2000)
    expect(message.startsWith('未检测到人脸，请检查视频第 1 帧')).toBe(true)
  })
})
