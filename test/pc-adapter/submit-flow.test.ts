import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { md5File } from '../../lib/hash.js'
import { RelayClient } from '../../pc-adapter/client.js'
import {
  InputFileError,
  TaskFailedError,
  prepareAndSubmit,
  renderVideo,
} from '../../pc-adapter/submit-flow.js'
import type { TaskStatusData } from '../../protocol/index.js'
import { startTestGateway } from './gateway-fixture.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { startTestBridge, startTestGpu } from '../helpers/relay.js'

const LICENSE = 'license-flow-test'

describe('renderVideo / prepareAndSubmit', () => {
  it('uploads only the files the gateway does not have yet', async () => {
    const fx = await startTestGateway()
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const video = await fx.file('avatar.mp4', 20_000)
    const audio1 = await fx.file('first.wav')
    const audio2 = await fx.file('second.wav')
    const [v, a1, a2] = await Promise.all([md5File(video), md5File(audio1), md5File(audio2)])

    const first = await prepareAndSubmit({
      client,
      audioPath: audio1,
      videoPath: video,
      licenseKey: LICENSE,
    })
    expect(first.uploaded.sort()).toEqual([a1.hash, v.hash].sort())
    expect(first.audio).toMatchObject({ hash: a1.hash, ext: '.wav' })
    expect(first.video).toMatchObject({ hash: v.hash, ext: '.mp4' })

    const lines: string[] = []
    const second = await prepareAndSubmit({
      client,
      audioPath: audio2,
      videoPath: video,
      licenseKey: LICENSE,
      onUpdate: (line) => lines.push(line),
    })
    expect(second.uploaded).toEqual([a2.hash])
    expect(second.submit.task_id).not.toBe(first.submit.task_id)
    expect(lines).toContain('✔️ 视频已在服务器上，无需上传')
    expect(lines.at(-1)).toBe(`📨 任务已提交，编号 ${second.submit.task_id}`)
  })

  it('queues while the GPU is offline and keeps reporting the wait until stopped', async () => {
    const fx = await startTestGateway()
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const audio = await fx.file('a.wav')
    const video = await fx.file('v.mp4')
    const stop = new AbortController()
    const updates: { line: string; status: TaskStatusData | null }[] = []
    let submittedId = ''
    const run = renderVideo({
      client,
      audioPath: audio,
      videoPath: video,
      licenseKey: LICENSE,
      pollMs: 20,
      signal: stop.signal,
      onSubmitted: (s) => {
        submittedId = s.task_id
      },
      onUpdate: (line, status) => {
        updates.push({ line, status })
        if (status?.status === 'queued') stop.abort()
      },
    })
    await expect(run).rejects.toMatchObject({ name: 'AbortError' })
    const queued = updates.find((u) => u.status !== null)
    expect(queued?.line).toMatch(/^⏳ GPU 服务器未上线，任务已排队/)
    expect(queued?.status).toMatchObject({ task_id: submittedId, queue_position: 1 })
    expect(await client.taskStatus(submittedId)).toMatchObject({ status: 'queued' })
  })

  it('runs to the end once a GPU takes the task, and downloads the result', async () => {
    const fx = await startTestGateway()
    const gpu = await startTestGpu(fx.dir, 300)
    await startTestBridge(fx.dir, { gateway: fx.gateway, gpu })
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const lines: string[] = []
    const outPath = join(fx.dir, 'result.mp4')
    const audioPath = await fx.file('a.wav')
    const videoPath = await fx.file('v.mp4')
    const result = fakeResultBytes(
      (await md5File(audioPath)).hash,
      (await md5File(videoPath)).hash,
      32 * 1024,
    )
    const done = await renderVideo({
      client,
      audioPath,
      videoPath,
      licenseKey: LICENSE,
      outPath,
      pollMs: 20,
      onUpdate: (line) => lines.push(line),
    })
    expect(done.status.status).toBe('done')
    expect(done).toMatchObject({ outPath, bytes: result.length })
    expect(done.uploaded).toHaveLength(2)
    expect(await readFile(outPath)).toEqual(result)
    expect(lines).toContain('✅ 视频生成完成')
  })

  it('throws the Chinese reason when the task fails on the GPU', async () => {
    const fx = await startTestGateway()
    const gpu = await startTestGpu(fx.dir, 300)
    gpu.failNext('视频中未检测到人脸')
    await startTestBridge(fx.dir, { gateway: fx.gateway, gpu })
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const run = renderVideo({
      client,
      audioPath: await fx.file('a.wav'),
      videoPath: await fx.file('v.mp4'),
      licenseKey: LICENSE,
      outPath: join(fx.dir, 'never.mp4'),
      pollMs: 20,
    })
    await expect(run).rejects.toBeInstanceOf(TaskFailedError)
    await expect(run).rejects.toThrow('任务失败：视频中未检测到人脸')
  })

  it('refuses an input file without an extension before contacting the server', async () => {
    const fx = await startTestGateway()
    const client = new RelayClient({ baseUrl: fx.gateway.url })
    const run = prepareAndSubmit({
      client,
      audioPath: await fx.file('voice'),
      videoPath: await fx.file('v.mp4'),
      licenseKey: LICENSE,
    })
    await expect(run).rejects.toBeInstanceOf(InputFileError)
    await expect(run).rejects.toThrow('无法从文件名识别音频格式')
  })
})
