import { randomUUID } from 'node:crypto'
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { md5File } from '../../lib/hash.js'
import { HttpError } from '../../lib/http-client.js'
import { RelayClient } from '../../pc-adapter/client.js'
import { startTestGateway } from './gateway-fixture.js'

const LICENSE = 'license-client-test'

describe('RelayClient against the real gateway', () => {
  it('reports the relay healthy while no GPU is online', async () => {
    const { gateway } = await startTestGateway()
    const client = new RelayClient({ baseUrl: gateway.url, secret: 's3cret' })
    const health = await client.health()
    expect(health.code).toBe(0)
    expect(health.initialized).toBe(true)
    expect(health.queue.queued).toBe(0)
  })

  it('checks, uploads and finds files by md5', async () => {
    const fx = await startTestGateway()
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const path = await fx.file('voice.wav')
    const { hash, size } = await md5File(path)
    expect(await client.checkFiles([{ hash, ext: '.wav' }])).toEqual({ [hash]: false })
    const uploaded = await client.uploadFile(path, { hash, ext: '.wav' })
    expect(uploaded).toEqual({
      hash,
      server_path: `store/${hash}.wav`,
      ext: '.wav',
      size,
      hash_matched: true,
    })
    expect(await client.checkFiles([{ hash, ext: '.wav' }])).toEqual({ [hash]: true })
  })

  it('uploads a file whose name is Chinese and has spaces', async () => {
    const fx = await startTestGateway()
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const path = await fx.file('我的 配音 (1).wav', 1)
    const { hash, size } = await md5File(path)
    const reply = await client.uploadFile(path, { hash, ext: '.wav' })
    expect(reply).toEqual({
      hash,
      server_path: `store/${hash}.wav`,
      ext: '.wav',
      size,
      hash_matched: true,
    })
  })

  it('returns the real hash when an upload does not match its claimed hash', async () => {
    const fx = await startTestGateway()
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const path = await fx.file('face.mp4')
    const real = await md5File(path)
    const claimed = 'f'.repeat(32)
    const reply = await client.uploadFile(path, { hash: claimed, ext: '.mp4' })
    expect(reply.hash_matched).toBe(false)
    expect(reply.hash).toBe(real.hash)
    expect(await client.checkFiles([{ hash: claimed, ext: '.mp4' }])).toEqual({ [claimed]: false })
  })

  it('queues a task while the GPU is offline and says so in Chinese', async () => {
    const fx = await startTestGateway()
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const audio = await fx.file('a.wav')
    const video = await fx.file('v.mp4')
    const a = await md5File(audio)
    const v = await md5File(video)
    await client.uploadFile(audio, { hash: a.hash, ext: '.wav' })
    await client.uploadFile(video, { hash: v.hash, ext: '.mp4' })

    const submit = await client.submitTask({
      audio_hash: a.hash,
      audio_ext: '.wav',
      video_hash: v.hash,
      video_ext: '.mp4',
      license_key: LICENSE,
    })
    expect(submit.status).toBe('queued')
    expect(submit.msg).toContain('GPU 服务器未上线')
    expect(submit.eta_seconds).toBeGreaterThan(0)

    const status = await client.taskStatus(submit.task_id)
    expect(status).toMatchObject({ task_id: submit.task_id, status: 'queued', queue_position: 1 })
    expect(status.result_url).toBeNull()

    // run_server's progress as the unchanged PC app reads it: a task waiting for a GPU that is not
    // online is `processing`, because the PC app shows only a processing task's message.
    const progress = await client.progress(submit.task_id)
    expect(progress).toMatchObject({ status: 'processing', progress: 1, queue_position: 1 })
    expect(progress.message).toContain('GPU 服务器未上线，任务已排队（第1位）')
  })

  it('refuses a submit whose files were never uploaded with a 404 and a Chinese message', async () => {
    const { gateway } = await startTestGateway()
    const client = new RelayClient({ baseUrl: gateway.url })
    const error = await client
      .submitTask({
        audio_hash: 'a'.repeat(32),
        audio_ext: '.wav',
        video_hash: 'b'.repeat(32),
        video_ext: '.mp4',
        license_key: LICENSE,
      })
      .catch((err: unknown) => err)
    expect(error).toBeInstanceOf(HttpError)
    expect(error).toMatchObject({
      status: 404,
      message: expect.stringContaining('请先上传') as unknown,
    })
  })

  it('answers an unknown task id with 404 and the server message', async () => {
    const { gateway } = await startTestGateway()
    const client = new RelayClient({ baseUrl: gateway.url })
    await expect(client.taskStatus(randomUUID())).rejects.toMatchObject({
      name: 'HttpError',
      status: 404,
      message: '任务不存在，请检查任务编号',
    })
  })

  it('refuses to download an unfinished task and leaves no partial file', async () => {
    const fx = await startTestGateway()
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const submit = await fx.submitFresh(client, LICENSE)
    const out = join(fx.dir, 'out')
    await mkdir(out)
    await expect(client.download(submit.task_id, join(out, 'result.mp4'))).rejects.toMatchObject({
      name: 'HttpError',
      status: 400,
      message: expect.stringContaining('任务尚未完成') as unknown,
    })
    expect(await readdir(out)).toEqual([])
  })

  it('says in Chinese when the gateway cannot be reached', async () => {
    const client = new RelayClient({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 2_000 })
    await expect(client.health()).rejects.toMatchObject({
      name: 'HttpError',
      status: 0,
      message: expect.stringContaining('无法连接 gpu-relay 网关') as unknown,
    })
  })
})
