import { describe, expect, it } from 'vitest'
import { requestJson } from '../../lib/http-client.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { call, download, media, submitTask, taskStatus, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('idempotent submit', () => {
  it('returns the same task for a repeated Idempotency-Key or request_id, on both submit endpoints', async () => {
    const dir = await tempDir('idempotent')
    const gateway = await startTestGateway(dir)
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const body = {
      audio_hash: audio,
      audio_ext: '.wav',
      video_hash: video,
      video_ext: '.mp4',
      license_key: 'K',
    }
    const submitWithKey = async (key: string) => {
      const reply = await requestJson(`${gateway.url}/api/heygem/task/submit`, {
        body,
        headers: { 'Idempotency-Key': key },
      })
      return (reply.body as { data: { task_id: string } }).data.task_id
    }
    const first = await submitWithKey('retry-me')
    expect(await submitWithKey('retry-me')).toBe(first)
    expect(await submitWithKey('another')).not.toBe(first)

    const compat = { ...body, request_id: 'pc-42' }
    const a = await call(gateway.url, '/api/heygem/submit', compat)
    const b = await call(gateway.url, '/api/heygem/submit', compat)
    expect(b.env.data.task_id).toBe(a.env.data.task_id)
    // Keys belong to their owner: the same key from another license is another task.
    const other = await call(gateway.url, '/api/heygem/submit', { ...compat, license_key: 'K2' })
    expect(other.env.data.task_id).not.toBe(a.env.data.task_id)
    expect(gateway.store.all()).toHaveLength(4)
  })

  it('answers a submit identical to a finished task at once, with its result and no GPU work', async () => {
    const dir = await tempDir('cache-hit')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 200)
    await startTestBridge(dir, { gateway, gpu })
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const first = String(
      (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
    )
    await waitFor(async () => (await taskStatus(gateway.url, first)).status === 'done', {
      what: 'first done',
    })

    const again = await submitTask(gateway.url, { audio, video, licenseKey: 'K2' })
    expect(again.data.status).toBe('done')
    const id = String(again.data.task_id)
    expect(id).not.toBe(first)
    expect((await taskStatus(gateway.url, id)).status).toBe('done')
    const result = await download(gateway.url, id)
    expect(result.bytes.equals(fakeResultBytes(audio, video, 32 * 1024))).toBe(true)
    expect(gpu.stats.submissions).toHaveLength(1)
  })
})

describe('idempotent submit under pressure', () => {
  it('creates one task for concurrent repeats of one key, and refuses the key for other files', async () => {
    const dir = await tempDir('idempotent-race')
    const gateway = await startTestGateway(dir)
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const body = {
      audio_hash: audio,
      audio_ext: '.wav',
      video_hash: video,
      video_ext: '.mp4',
      request_id: 'same',
    }
    // The unchanged PC app sends no license key: those tasks share one key space.
    const replies = await Promise.all(
      Array.from({ length: 5 }, () => call(gateway.url, '/api/heygem/submit', body)),
    )
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200, 200])
    expect(new Set(replies.map((r) => String(r.env.data.task_id))).size).toBe(1)
    expect(gateway.store.all()).toHaveLength(1)
    const other = await upload(gateway.url, media('b', 'audio'), '.wav')
    const reused = await call(gateway.url, '/api/heygem/submit', { ...body, audio_hash: other })
    expect(reused.status).toBe(409)
    expect(reused.env.data).toEqual({ error: 'IDEMPOTENCY_CONFLICT' })
  })
})
