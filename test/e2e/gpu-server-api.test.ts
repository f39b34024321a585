import { readdir } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { uploadMultipart } from '../../lib/http-client.js'
import { md5Buffer } from '../../lib/hash.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { call, download, media, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

describe('the GPU server API spoken by the gateway (the unchanged PC app)', () => {
  it('check_files → upload_file → submit → progress → download works while the GPU is off and after it comes up; the shared avatar travels once', async () => {
    const dir = await tempDir('gpu-api')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 300)

    const health = await fetch(`${gateway.url}/api/heygem/health`).then((r) => r.json())
    expect(health).toMatchObject({ code: 0, msg: 'ok', initialized: true, queue: { queued: 0 } })

    const avatar = media('avatar')
    const speeches = [media('a'), media('b'), media('c')]
    const files = [
      { hash: md5Buffer(avatar), ext: '.mp4' },
      ...speeches.map((s) => ({ hash: md5Buffer(s), ext: '.wav' })),
    ]
    const before = await call(gateway.url, '/api/heygem/check_files', { files })
    expect(before.env.code).toBe(0)
    expect(Object.values(before.env.data)).toEqual([false, false, false, false])

    const avatarHash = await upload(gateway.url, avatar, '.mp4')
    const speechHashes = await Promise.all(speeches.map((s) => upload(gateway.url, s, '.wav')))
    const after = await call(gateway.url, '/api/heygem/check_files', { files })
    expect(Object.values(after.env.data)).toEqual([true, true, true, true])

    const taskIds: string[] = []
    for (const audio of speechHashes) {
      const submitted = await call(gateway.url, '/api/heygem/submit', {
        audio_hash: audio,
        audio_ext: '.wav',
        video_hash: avatarHash,
        video_ext: '.mp4',
      })
      expect(submitted.env).toMatchObject({ code: 0, msg: '任务已提交' })
      expect(submitted.env.data.queue).toMatchObject({ gpus_online: 0 })
      taskIds.push(String(submitted.env.data.task_id))
    }
    const first = taskIds[0] ?? ''
    const queued = await call(gateway.url, `/api/heygem/progress?task_id=${first}`)
    expect(queued.env.data).toMatchObject({ status: 'queued', progress: 0, queue_position: 1 })
    expect(String(queued.env.data.message)).toContain('GPU 服务器未上线')

    await startTestBridge(dir, gateway, gpu)
    const statuses = new Set<string>()
    await waitFor(
      async () => {
        const replies = await Promise.all(
          taskIds.map((id) => call(gateway.url, `/api/heygem/progress?task_id=${id}`)),
        )
        for (const r of replies) statuses.add(String(r.env.data.status))
        return replies.every((r) => r.env.data.status === 'done')
      },
      { what: 'all done via the progress endpoint', timeoutMs: 30_000, intervalMs: 50 },
    )
    expect(
      [...statuses].every((s) =>
        ['queued', 'processing', 'synthesizing', 'encoding', 'done'].includes(s),
      ),
    ).toBe(true)
    expect(statuses.has('synthesizing')).toBe(true)

    for (const [i, id] of taskIds.entries()) {
      const result = await download(gateway.url, id)
      expect(result.status).toBe(200)
      expect(
        result.bytes.equals(fakeResultBytes(speechHashes[i] ?? '', avatarHash, 32 * 1024)),
      ).toBe(true)
    }
    expect(gpu.stats.uploads.filter((u) => u.hash === avatarHash)).toHaveLength(1)
    expect(gpu.stats.submissions).toHaveLength(3)
  })

  it('answers the PC app with the GPU server’s errors: unknown task 404, missing file 404, early download 400, mismatched upload stored under its real md5', async () => {
    const dir = await tempDir('gpu-api-errors')
    const gateway = await startTestGateway(dir)
    const unknown = '00000000-0000-4000-8000-000000000000'
    const progress = await call(gateway.url, `/api/heygem/progress?task_id=${unknown}`)
    expect(progress.status).toBe(404)
    expect(progress.env.code).toBe(404)
    expect(progress.env.msg).toContain('任务不存在')
    expect((await download(gateway.url, unknown)).status).toBe(404)

    const missing = await call(gateway.url, '/api/heygem/submit', {
      audio_hash: 'a'.repeat(32),
      audio_ext: '.wav',
      video_hash: 'b'.repeat(32),
      video_ext: '.mp4',
    })
    expect(missing.status).toBe(404)
    expect(missing.env.msg).toContain('请先上传')

    const bytes = media('x')
    const claimed = 'c'.repeat(32)
    const reply = await uploadMultipart({
      url: `${gateway.url}/api/heygem/upload_file`,
      source: Readable.from([bytes]),
      size: bytes.length,
      fields: { hash: claimed, ext: '.wav' },
      fileField: 'file',
      filename: 'x.wav',
    })
    expect(reply.body).toMatchObject({
      code: 0,
      data: { hash: md5Buffer(bytes), hash_matched: false },
    })
    const check = await call(gateway.url, '/api/heygem/check_files', {
      files: [
        { hash: claimed, ext: '.wav' },
        { hash: md5Buffer(bytes), ext: '.wav' },
      ],
    })
    expect(check.env.data).toEqual({ [claimed]: false, [md5Buffer(bytes)]: true })
  })
})

describe('an upload cut off half-way', () => {
  it('leaves no file behind and the gateway keeps serving', async () => {
    const dir = await tempDir('upload-abort')
    const gateway = await startTestGateway(dir)
    const boundary = 'xyz'
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n`
    const tmp = join(dir, 'gateway', 'files', 'tmp')
    const req = request(`${gateway.url}/api/heygem/upload_file`, {
      method: 'POST',
      headers: {
        'content-type': `multipart/form-data; boundary=${boundary}`,
        'content-length': '1000000',
      },
    })
    const failed = new Promise<void>((resolve) => req.on('error', () => resolve()))
    req.write(head + 'x'.repeat(5000))
    // The gateway has started writing the partial file; now the client goes away.
    await waitFor(async () => (await readdir(tmp)).length > 0, { what: 'a partial upload on disk' })
    req.destroy()
    await failed
    await waitFor(async () => (await readdir(tmp)).length === 0, {
      what: 'temp file removed',
    })
    const entries = (await readdir(join(dir, 'gateway', 'files'))).filter((e) => e !== 'tmp')
    expect(entries).toEqual([])
    const health = await call(gateway.url, '/api/heygem/queue')
    expect(health.env.code).toBe(0)
  })
})
