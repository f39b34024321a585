import { describe, expect, it } from 'vitest'
import { call, media, submitTask, taskStatus, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/** Submit `audio` and `video` for license key K: the new task's id. */
async function submitted(url: string, audio: string, video: string): Promise<string> {
  return String((await submitTask(url, { audio, video, licenseKey: 'K' })).data.task_id)
}

/** Upload a fresh audio and submit it with `video`: the new task's id. */
async function submittedWithNewAudio(url: string, label: string, video: string): Promise<string> {
  return submitted(url, await upload(url, media(label, 'audio'), '.wav'), video)
}

describe('cancelling a task', () => {
  it('never runs a task cancelled while queued', async () => {
    const dir = await tempDir('cancel-queued')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 200)
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const doomed = await submitted(gateway.url, audio, video)
    const kept = await submittedWithNewAudio(gateway.url, 'b', video)
    const cancelled = await call(gateway.url, '/api/heygem/task/cancel', { task_id: doomed })
    expect(cancelled.env).toMatchObject({ code: 0, data: { status: 'cancelled' } })

    await startTestBridge(dir, { gateway, gpu })
    await waitFor(async () => (await taskStatus(gateway.url, kept)).status === 'done', {
      what: 'the other task done',
    })
    expect(gpu.stats.submissions.map((s) => s.audioHash)).not.toContain(audio)
    expect((await taskStatus(gateway.url, doomed)).status).toBe('cancelled')
    // A finished task cannot be cancelled.
    const again = await call(gateway.url, '/api/heygem/task/cancel', { task_id: kept })
    expect(again.status).toBe(409)
  })

  it('stops following a task cancelled while running, and the GPU takes the next one', async () => {
    const dir = await tempDir('cancel-running')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 1_500)
    await startTestBridge(dir, { gateway, gpu })
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const running = await submittedWithNewAudio(gateway.url, 'a', video)
    const next = await submittedWithNewAudio(gateway.url, 'b', video)
    await waitFor(async () => (await taskStatus(gateway.url, running)).status === 'processing', {
      what: 'running',
    })
    await call(gateway.url, '/api/heygem/task/cancel', { task_id: running })
    await waitFor(async () => (await taskStatus(gateway.url, next)).status === 'done', {
      what: 'the next task done',
      timeoutMs: 15_000,
    })
    const status = await taskStatus(gateway.url, running)
    expect(status.status).toBe('cancelled')
    expect(status.result_url).toBeNull()
  })
})
