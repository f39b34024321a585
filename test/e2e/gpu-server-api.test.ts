import { readdir } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { uploadMultipart } from '../../lib/http-client.js'
import { md5Buffer } from '../../lib/hash.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import {
  aviBytes,
  m4aBytes,
  mkvBytes,
  movBytes,
  mp3Bytes,
  mp4Bytes,
  wavBytes,
} from '../helpers/media.js'
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
    expect(health).toMatchObject({
      code: 0,
      msg: 'ok',
      initialized: true,
      queue: { total_tasks: 0, processing: 0, queued: 0, max_concurrent: 1 },
    })

    const avatar = media('avatar', 'video')
    const speeches = [media('a', 'audio'), media('b', 'audio'), media('c', 'audio')]
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
      expect(submitted.env.data.queue).toMatchObject({
        total_tasks: taskIds.length + 1,
        queued: taskIds.length + 1,
        processing: 0,
        max_concurrent: 1,
        gpus_online: 0,
      })
      taskIds.push(String(submitted.env.data.task_id))
    }
    const first = taskIds[0] ?? ''
    const queued = await call(gateway.url, `/api/heygem/progress?task_id=${first}`)
    // (Its status word while the GPU is off is the progress endpoint's business, not this test's.)
    expect(queued.env.data).toMatchObject({ task_id: first, queue_position: 1 })
    expect(String(queued.env.data.message)).toContain('GPU 服务器未上线')

    await startTestBridge(dir, { gateway, gpu })
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
    expect(progress.env.msg).toMatch(/任务.*不存在/)
    expect((await download(gateway.url, unknown)).status).toBe(404)

    const missing = await call(gateway.url, '/api/heygem/submit', {
      audio_hash: 'a'.repeat(32),
      audio_ext: '.wav',
      video_hash: 'b'.repeat(32),
      video_ext: '.mp4',
    })
    expect(missing.status).toBe(404)
    expect(missing.env.msg).toBe(`音频文件不存在: ${'a'.repeat(32)}.wav，请先上传`)

    const bytes = media('x', 'audio')
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
      data: {
        hash: md5Buffer(bytes),
        server_path: `store/${md5Buffer(bytes)}.wav`,
        hash_matched: false,
      },
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
    req.write(Buffer.concat([Buffer.from(head), wavBytes('partial', 5000)]))
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

async function uploadAs(
  base: string,
  bytes: Buffer,
  form: { fields: Record<string, string>; filename: string },
): Promise<{ status: number; body: unknown }> {
  const { fields, filename } = form
  return uploadMultipart({
    url: `${base}/api/heygem/upload_file`,
    source: Readable.from([bytes]),
    size: bytes.length,
    fields,
    fileField: 'file',
    filename,
  })
}

/** Every file under the pool's folder (staged uploads in tmp/ included). */
async function poolFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(dir, 'gateway', 'files'), { recursive: true })
  return entries.filter((e) => e !== 'tmp' && !/^[0-9a-f]{2}$/.test(e)).sort()
}

describe('what run_server accepts, the gateway accepts', () => {
  it('takes a submit with license_key "" (no owner, reachable by its id), extra keys and default extensions', async () => {
    const dir = await tempDir('gpu-api-lenient')
    const gateway = await startTestGateway(dir)
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const submitted = await call(gateway.url, '/api/heygem/submit', {
      audio_hash: audio,
      video_hash: video,
      license_key: '',
      sender_fd: 17,
    })
    expect(submitted.status).toBe(200)
    expect(submitted.env).toMatchObject({ code: 0, msg: '任务已提交' })
    const taskId = String(submitted.env.data.task_id)
    const row = gateway.store.get(taskId)
    expect(row).toMatchObject({ owner: null, audio_ext: '.wav', video_ext: '.mp4' })
    expect((await call(gateway.url, `/api/heygem/progress?task_id=${taskId}`)).status).toBe(200)

    // The seed's submit is as lenient.
    const seed = await call(gateway.url, '/api/heygem/task/submit', {
      audio_hash: audio.toUpperCase(),
      audio_ext: '.wav',
      video_hash: video,
      video_ext: '.mp4',
      license_key: '',
    })
    expect(seed.status).toBe(200)
    expect(gateway.store.get(String(seed.env.data.task_id))?.owner).toBeNull()

    const empty = await call(gateway.url, '/api/heygem/submit', {
      audio_hash: '',
      video_hash: video,
    })
    expect(empty.status).toBe(400)
    expect(empty.env.msg).toBe('audio_hash 和 video_hash 不能为空')
    const tmpHash = await call(gateway.url, '/api/heygem/submit', {
      audio_hash: audio,
      video_hash: 'tmp_1700000000_ab12',
      video_ext: '.avi',
    })
    expect(tmpHash.status).toBe(404)
    expect(tmpHash.env.msg).toBe('视频文件不存在: tmp_1700000000_ab12.avi，请先上传')
  })

  it('reads a JSON route’s body as JSON whatever its Content-Type, an empty ext as the default, and answers task ids as run_server words it', async () => {
    const dir = await tempDir('gpu-api-bodies')
    const gateway = await startTestGateway(dir)
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    // A browser posting without a preflight sends text/plain; run_server parses it all the same.
    const res = await fetch(`${gateway.url}/api/heygem/submit`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      body: JSON.stringify({ audio_hash: audio, audio_ext: '', video_hash: video, video_ext: '' }),
    })
    const body = (await res.json()) as { code: number; data: { task_id: string } }
    expect(res.status).toBe(200)
    expect(body.code).toBe(0)
    expect(gateway.store.get(body.data.task_id)).toMatchObject({
      audio_ext: '.wav',
      video_ext: '.mp4',
    })

    for (const path of ['/api/heygem/progress', '/api/heygem/download']) {
      const missing = await call(gateway.url, path)
      expect([missing.status, missing.env.msg]).toEqual([400, '缺少 task_id'])
      const unknown = await call(gateway.url, `${path}?task_id=0123456789abcdef`)
      expect([unknown.status, unknown.env.msg]).toEqual([404, '任务 0123456789abcdef 不存在'])
    }
  })

  it('answers check_files for any hash string and any extension; files: [] is {}', async () => {
    const dir = await tempDir('gpu-api-check')
    const gateway = await startTestGateway(dir)
    const bytes = media('c', 'audio')
    const hash = await upload(gateway.url, bytes, '.wav')
    const check = await call(gateway.url, '/api/heygem/check_files', {
      files: [
        { hash, ext: '.whatever' },
        { hash: 'tmp_1700000000_x', ext: '' },
        { hash: '__proto__', ext: '.wav' },
      ],
    })
    expect(check.status).toBe(200)
    expect(check.env.data).toEqual(
      Object.fromEntries([
        [hash, true],
        ['tmp_1700000000_x', false],
        ['__proto__', false],
      ]),
    )
    const none = await call(gateway.url, '/api/heygem/check_files', { files: [] })
    expect(none).toMatchObject({ status: 200, env: { code: 0, data: {} } })
  })

  it('stores an upload sent under a tmp_… hash (the H5 app) and answers its real md5', async () => {
    const dir = await tempDir('gpu-api-h5-upload')
    const gateway = await startTestGateway(dir)
    const bytes = media('h5', 'video')
    const reply = await uploadAs(gateway.url, bytes, {
      fields: { hash: `tmp_${String(Date.now())}_k3j9`, ext: '.mp4' },
      filename: 'blob',
    })
    const real = md5Buffer(bytes)
    expect(reply).toMatchObject({
      status: 200,
      body: {
        code: 0,
        data: { hash: real, server_path: `store/${real}.mp4`, hash_matched: false },
      },
    })
    // ext left out: taken from the file name.
    const named = media('named', 'audio')
    const byName = await uploadAs(gateway.url, named, {
      fields: { hash: 'x' },
      filename: 'voice.MP3',
    })
    expect(byName.body).toMatchObject({ data: { hash: md5Buffer(named), ext: '.mp3' } })
    const check = await call(gateway.url, '/api/heygem/check_files', {
      files: [{ hash: real, ext: '.mp4' }],
    })
    expect(check.env.data).toEqual({ [real]: true })
  })

  it('takes any audio or video container by its content (.avi .mkv .mov, .mp3 .m4a), whatever the name', async () => {
    const dir = await tempDir('gpu-api-containers')
    const gateway = await startTestGateway(dir)
    const files: [Buffer, string][] = [
      [aviBytes('avatar'), '.avi'],
      [mkvBytes('avatar'), '.mkv'],
      [movBytes('avatar'), '.mov'],
      [mp4Bytes('avatar'), '.mp4'],
      [mp3Bytes('speech'), '.mp3'],
      [m4aBytes('speech'), '.m4a'],
      [wavBytes('speech'), '.bin'], // a WAVE under a name that says nothing
    ]
    for (const [bytes, ext] of files) {
      const reply = await uploadAs(gateway.url, bytes, {
        fields: { hash: md5Buffer(bytes), ext },
        filename: `in${ext}`,
      })
      expect(reply, ext).toMatchObject({
        status: 200,
        body: { data: { hash: md5Buffer(bytes), ext } },
      })
    }
    const submitted = await call(gateway.url, '/api/heygem/submit', {
      audio_hash: md5Buffer(files[4]?.[0] ?? Buffer.alloc(0)),
      audio_ext: '.mp3',
      video_hash: md5Buffer(files[0]?.[0] ?? Buffer.alloc(0)),
      video_ext: '.avi',
      license_key: '',
    })
    expect(submitted.env).toMatchObject({ code: 0, msg: '任务已提交' })
  })

  it('refuses empty and non-media uploads with NOT_MEDIA / EMPTY_FILE, and leaves no staged bytes', async () => {
    const dir = await tempDir('gpu-api-not-media')
    const gateway = await startTestGateway(dir)
    const before = await poolFiles(dir)
    const cases: [Buffer, string, string][] = [
      [Buffer.alloc(0), 'empty.wav', 'EMPTY_FILE'],
      [Buffer.from('hello, this is text and not a voice\n'.repeat(300)), 'notes.wav', 'NOT_MEDIA'],
      [Buffer.concat([Buffer.from('MZ'), Buffer.alloc(9000, 0x90)]), 'tool.mp4', 'NOT_MEDIA'],
      [Buffer.from('%PDF-1.7\n'.padEnd(6000, ' ')), 'scan.mp4', 'NOT_MEDIA'],
    ]
    for (const [bytes, filename, code] of cases) {
      const reply = await uploadAs(gateway.url, bytes, {
        fields: { hash: md5Buffer(bytes) },
        filename,
      })
      expect(reply, filename).toMatchObject({
        status: 400,
        body: { code: 400, data: { error: code } },
      })
      expect(JSON.stringify(reply.body)).toMatch(/音频或视频/)
    }
    expect(await poolFiles(dir)).toEqual(before)
    expect(await readdir(join(dir, 'gateway', 'files', 'tmp'))).toEqual([])
    const check = await call(gateway.url, '/api/heygem/check_files', {
      files: cases.map(([bytes]) => ({ hash: md5Buffer(bytes), ext: '.wav' })),
    })
    expect(Object.values(check.env.data)).toEqual([false, false, false, false])
  })
})
