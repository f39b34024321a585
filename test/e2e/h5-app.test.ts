/**
 * What the H5 app (a browser page) and run_server's other clients do against the gateway: CORS on
 * every reply, the preflight before auth, the download played in place with byte ranges and the
 * secret as `?token=`, the legacy two-file upload, and assets kept while no GPU is online.
 */
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { md5Buffer } from '../../lib/hash.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { mkvBytes, mp3Bytes } from '../helpers/media.js'
import { call, download, media, postForm, upload } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const API_SECRET = 'h5-api-secret-1'

/** Replies as far as the tests read them; other keys are kept for the equality checks. */
const Submitted = z.looseObject({ task_id: z.string() })
const Asset = z.looseObject({ id: z.number(), asset_type: z.string() })
const AssetList = z.array(Asset)

const RUN_SERVER_CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-expose-headers':
    'Content-Length, Content-Range, Accept-Ranges, Content-Disposition',
}

function expectCors(headers: Headers): void {
  for (const [name, value] of Object.entries(RUN_SERVER_CORS)) {
    expect(headers.get(name), name).toBe(value)
  }
  // run_server's allowed headers, then ours.
  expect(headers.get('access-control-allow-headers')).toMatch(
    /^Authorization, Content-Type, Range(, |$)/,
  )
  expect(headers.get('access-control-allow-headers')).toContain('Idempotency-Key')
  expect(headers.get('access-control-allow-headers')).toContain('X-License-Key')
}

describe('CORS (the H5 app runs in a browser)', () => {
  it('answers a preflight on any path with 200 before auth, and puts the headers on successes, errors and 404s', async () => {
    const dir = await tempDir('h5-cors')
    const gateway = await startTestGateway(dir, { apiSecret: API_SECRET })
    for (const path of ['/api/heygem/submit', '/api/asset/upload', '/no/such/path']) {
      const pre = await fetch(`${gateway.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          origin: 'http://h5.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      })
      expect(pre.status, path).toBe(200)
      expectCors(pre.headers)
    }
    const health = await fetch(`${gateway.url}/api/heygem/health`)
    expect(health.status).toBe(200)
    expectCors(health.headers)
    const refused = await fetch(`${gateway.url}/api/heygem/queue`) // no secret
    expect(refused.status).toBe(401)
    expectCors(refused.headers)
    const missing = await fetch(`${gateway.url}/api/heygem/nothing`, {
      headers: { authorization: API_SECRET }, // the bare secret works as run_server's does
    })
    expect(missing.status).toBe(404)
    expectCors(missing.headers)
  })
})

describe('the result download', () => {
  it('plays in place (video/mp4, inline), serves byte ranges with 206, takes the secret as ?token=, and answers an identical submit from the cache', async () => {
    const dir = await tempDir('h5-download')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 100)
    await startTestBridge(dir, { gateway, gpu })
    const audio = await upload(gateway.url, media('a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('v', 'video'), '.mp4')
    const body = { audio_hash: audio, video_hash: video, license_key: '' }
    const first = await call(gateway.url, '/api/heygem/submit', body)
    const taskId = String(first.env.data.task_id)
    await waitFor(
      async () =>
        (await call(gateway.url, `/api/heygem/progress?task_id=${taskId}`)).env.data.status ===
        'done',
      { what: 'task done', timeoutMs: 20_000 },
    )
    const whole = fakeResultBytes(audio, video, 32 * 1024)

    const res = await fetch(`${gateway.url}/api/heygem/download?task_id=${taskId}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('video/mp4')
    expect(res.headers.get('content-disposition')).toBe(`inline; filename=${taskId}.mp4`)
    expect(res.headers.get('accept-ranges')).toBe('bytes')
    expectCors(res.headers)
    expect(Buffer.from(await res.arrayBuffer()).equals(whole)).toBe(true)

    const part = await fetch(`${gateway.url}/api/heygem/download?task_id=${taskId}`, {
      headers: { range: 'bytes=100-1099' },
    })
    expect(part.status).toBe(206)
    expect(part.headers.get('content-range')).toBe(`bytes 100-1099/${String(whole.length)}`)
    expect(Buffer.from(await part.arrayBuffer()).equals(whole.subarray(100, 1100))).toBe(true)

    // The same audio and video again: run_server's cache-hit reply, done at once.
    const again = await call(gateway.url, '/api/heygem/submit', body)
    expect(again.env).toMatchObject({
      code: 0,
      msg: '缓存命中，直接返回',
      data: { cached: true, status: 'done' },
    })
    expect((await download(gateway.url, String(again.env.data.task_id))).bytes.equals(whole)).toBe(
      true,
    )
  })

  it('takes the API secret as ?token= on the download only', async () => {
    const dir = await tempDir('h5-token')
    const gateway = await startTestGateway(dir, { apiSecret: API_SECRET })
    const unknown = '00000000-0000-4000-8000-000000000000'
    const withToken = await fetch(
      `${gateway.url}/api/heygem/download?task_id=${unknown}&token=${API_SECRET}`,
    )
    expect(withToken.status).toBe(404) // through auth: the task is unknown
    const wrong = await fetch(`${gateway.url}/api/heygem/download?task_id=${unknown}&token=nope`)
    expect(wrong.status).toBe(401)
    const elsewhere = await fetch(
      `${gateway.url}/api/heygem/progress?task_id=${unknown}&token=${API_SECRET}`,
    )
    expect(elsewhere.status).toBe(401)
  })
})

describe('the legacy upload (audio and video in one request)', () => {
  it('stores both by content and queues the task like a submit, with the same reply', async () => {
    const dir = await tempDir('h5-legacy')
    const gateway = await startTestGateway(dir)
    const audio = mp3Bytes('legacy-voice')
    const video = mkvBytes('legacy-face')
    const reply = await postForm(`${gateway.url}/api/heygem/upload`, {
      fields: { license_key: 'LEGACY' },
      files: {
        audio: { bytes: audio, filename: 'voice.mp3' },
        video: { bytes: video, filename: 'face.mkv' },
      },
    })
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({
      code: 0,
      msg: '任务已提交',
      data: { queue: { total_tasks: 1, queued: 1, processing: 0, max_concurrent: 1 } },
    })
    const data = Submitted.parse(reply.body.data)
    expect(gateway.store.get(data.task_id)).toMatchObject({
      owner: 'LEGACY',
      state: 'queued',
      audio_hash: md5Buffer(audio),
      audio_ext: '.mp3',
      video_hash: md5Buffer(video),
      video_ext: '.mkv',
    })
    const queue = await call(gateway.url, '/api/heygem/queue?license_key=LEGACY')
    expect(queue.env.data).toMatchObject({
      total_tasks: 1,
      tasks: [{ task_id: data.task_id, progress: 0 }],
    })
    // Another owner (or none) sees the counts, not the tasks.
    expect((await call(gateway.url, '/api/heygem/queue')).env.data).toMatchObject({ tasks: [] })
  })
})

describe('assets (voices and avatars) kept by the gateway', () => {
  it('uploads, deduplicates, lists newest first and deletes per license key, with no GPU online', async () => {
    const dir = await tempDir('h5-assets')
    const gateway = await startTestGateway(dir)
    const assetUrl = (path: string): string => `${gateway.url}/api/asset/${path}`
    const voice = media('voice', 'audio')
    const face = media('face', 'video')

    const up = await postForm(assetUrl('upload'), {
      fields: { license_key: 'H5-KEY', asset_type: 'voice', name: '我的声音' },
      files: { file: { bytes: voice, filename: 'rec.wav' } },
    })
    expect(up.status).toBe(200)
    expect(up.body).toMatchObject({
      code: 0,
      data: {
        name: '我的声音',
        asset_type: 'voice',
        file_hash: md5Buffer(voice),
        file_ext: '.wav',
        file_size: voice.length,
      },
    })
    const voiceId = Asset.parse(up.body.data).id
    // The H5 app may send the license key as the bearer (no API_SECRET on this gateway).
    const avatar = await postForm(assetUrl('upload'), {
      fields: { asset_type: 'avatar' },
      files: { file: { bytes: face, filename: '正脸.mp4' } },
      headers: { authorization: 'Bearer H5-KEY' },
    })
    expect(avatar.body).toMatchObject({ code: 0, data: { name: '正脸', asset_type: 'avatar' } })
    const again = await postForm(assetUrl('upload'), {
      fields: { license_key: 'H5-KEY', asset_type: 'voice' },
      files: { file: { bytes: voice, filename: 'rec.wav' } },
    })
    expect(again.body).toMatchObject({ code: 0, data: { id: voiceId } })

    const list = await call(gateway.url, '/api/asset/list?license_key=H5-KEY')
    const items = AssetList.parse(list.env.data)
    expect(items.map((i) => i.asset_type)).toEqual(['avatar', 'voice'])
    expect(items[1]).toEqual({
      id: voiceId,
      asset_type: 'voice',
      name: '我的声音',
      file_hash: md5Buffer(voice),
      file_ext: '.wav',
      file_size: voice.length,
      created_at: expect.any(Number) as unknown,
      days_left: 29,
    })
    const voices = await call(gateway.url, '/api/asset/list?license_key=H5-KEY&asset_type=voice')
    expect(AssetList.parse(voices.env.data).length).toBe(1)
    const foreign = await call(gateway.url, '/api/asset/list?license_key=OTHER')
    expect(foreign.env.data).toEqual([])

    // The asset's file is in the pool: the PC can submit it by hash.
    const check = await call(gateway.url, '/api/heygem/check_files', {
      files: [{ hash: md5Buffer(face), ext: '.mp4' }],
    })
    expect(check.env.data).toEqual({ [md5Buffer(face)]: true })

    const wrongOwner = await call(gateway.url, '/api/asset/delete', {
      id: voiceId,
      license_key: 'OTHER',
    })
    expect(wrongOwner.env).toMatchObject({ code: 0, msg: '已删除' })
    const del = await call(gateway.url, '/api/asset/delete', { id: voiceId, license_key: 'H5-KEY' })
    expect(del.env).toMatchObject({ code: 0, msg: '已删除' })
    const after = await call(gateway.url, '/api/asset/list?license_key=H5-KEY')
    const left = AssetList.parse(after.env.data)
    expect(left.map((i) => i.id)).not.toContain(voiceId)
    expect(left.length).toBe(1)
  })
})
