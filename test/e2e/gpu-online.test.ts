import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { call, media, download, submitTask, taskStatus, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('a task submitted while the GPU is online', () => {
  it('is submitted, reports rising progress, ends done, and downloads the GPU result for its inputs', async () => {
    const dir = await tempDir('online')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 1_500)
    const bridge = await startTestBridge(dir, { gateway, gpu })
    await waitFor(() => bridge.isConnected(), { what: 'bridge connected' })
    await waitFor(
      async () =>
        (
          (await fetch(`${gateway.url}/api/heygem/health`).then((r) => r.json())) as {
            gpu: { online: boolean }
          }
        ).gpu.online,
      {
        what: 'gateway sees the GPU online',
      },
    )

    const audio = await upload(gateway.url, media('audio', 'audio'), '.wav')
    const video = await upload(gateway.url, media('video', 'video'), '.mp4')
    const submitted = await submitTask(gateway.url, { audio, video, licenseKey: 'KEY-A' })
    expect(submitted.data.status).toBe('submitted')
    const taskId = String(submitted.data.task_id)

    const seen: number[] = []
    const final = await waitFor(
      async () => {
        const status = await taskStatus(gateway.url, taskId)
        seen.push(Number(status.progress))
        return status.status === 'done' ? status : null
      },
      { what: 'task done', timeoutMs: 20_000, intervalMs: 50 },
    )
    expect(final.progress).toBe(100)
    // A new audio and a new video, uploaded to the GPU service as it answers: the first attempt.
    expect(gateway.store.get(taskId)?.attempt).toBe(1)
    expect(final.result_url).toBe(`/api/heygem/download?task_id=${taskId}`)
    // progress was seen strictly between 0 and 100 and never went down
    expect(seen.some((p) => p > 0 && p < 100)).toBe(true)
    expect(seen).toEqual([...seen].sort((a, b) => a - b))

    const result = await download(gateway.url, taskId)
    expect(result.status).toBe(200)
    expect(result.bytes.equals(fakeResultBytes(audio, video, 32 * 1024))).toBe(true)
    expect(gpu.stats.submissions).toHaveLength(1)

    // A result whose file has gone from the pool gets run_server's 404, not a server error.
    const hash = gateway.store.get(taskId)?.result_hash ?? ''
    await rm(join(dir, 'gateway', 'files', hash.slice(0, 2), hash))
    const gone = await call(gateway.url, `/api/heygem/download?task_id=${taskId}`)
    expect(gone.status).toBe(404)
    expect(gone.env).toMatchObject({ msg: '结果文件不存在', data: { error: 'RESULT_GONE' } })
  })
})

describe('a task submitted while the GPU is offline', () => {
  it('is queued with the Chinese message and an estimate, and reaches no GPU service', async () => {
    const dir = await tempDir('offline')
    const gateway = await startTestGateway(dir, { bootEstimateS: 150 })
    const gpu = await startTestGpu(dir)

    const audio = await upload(gateway.url, media('audio', 'audio'), '.wav')
    const video = await upload(gateway.url, media('video', 'video'), '.mp4')
    const submitted = await submitTask(gateway.url, { audio, video, licenseKey: 'KEY-A' })
    expect(submitted.data.status).toBe('queued')
    expect(String(submitted.data.msg)).toContain('GPU 服务器未上线，任务已排队')
    expect(String(submitted.data.msg)).toContain('约 3 分钟')
    // The boot estimate counts down from the submit: at most 150 s, a moment later.
    expect(submitted.data.eta_seconds).toBeLessThanOrEqual(150)
    expect(submitted.data.eta_seconds).toBeGreaterThan(140)

    const second = await submitTask(gateway.url, { audio, video, licenseKey: 'KEY-B' })
    expect(second.data.queue_position).toBe(2)
    expect(String(second.data.msg)).toContain('（第2位）')

    const status = await taskStatus(gateway.url, String(submitted.data.task_id))
    expect(status).toMatchObject({
      status: 'queued',
      progress: 0,
      queue_position: 1,
      result_url: null,
    })
    // nothing was sent to the GPU machine
    expect(gpu.stats.submissions).toHaveLength(0)
    expect(gpu.stats.uploads).toHaveLength(0)
    const early = await download(gateway.url, String(submitted.data.task_id))
    expect(early.status).toBe(400)
  })
})
