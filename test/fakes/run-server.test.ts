import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, onTestFinished, test } from 'vitest'
import { z } from 'zod'
import { md5Buffer } from '../../lib/hash.js'
import {
  AnyEnvelope,
  CheckFilesData,
  envelope,
  GpuSubmitData,
  HEYGEM_PATHS,
  HealthReply,
  ProgressData,
  UploadFileData,
} from '../../protocol/index.js'
import { waitFor } from '../helpers/wait-for.js'
import { fakeResultBytes } from './result-bytes.js'
import { startFakeRunServer, type FakeRunServer, type FakeRunServerOptions } from './run-server.js'

type Reply = { status: number; body: unknown }

async function start(
  options: Omit<FakeRunServerOptions, 'dir'> = {},
): Promise<{ gpu: FakeRunServer; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'fake-run-server-'))
  onTestFinished(() => rm(dir, { recursive: true, force: true }))
  const gpu = await startFakeRunServer({ durationMs: 400, ...options, dir })
  onTestFinished(() => gpu.close())
  return { gpu, dir }
}

async function call(gpu: FakeRunServer, path: string, body?: unknown): Promise<Reply> {
  const res = await fetch(
    `${gpu.url}${path}`,
    body === undefined
      ? {}
      : {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        },
  )
  return { status: res.status, body: await res.json() }
}

function data<T>(reply: Reply, schema: z.ZodType<T>): T {
  expect(reply.status).toBe(200)
  return envelope(schema).parse(reply.body).data
}

function failure(reply: Reply): { status: number; code: number; msg: string } {
  const body = AnyEnvelope.parse(reply.body)
  return { status: reply.status, code: body.code, msg: body.msg }
}

async function upload(
  gpu: FakeRunServer,
  bytes: Buffer,
  hash: string,
  ext: string,
  order: 'fields-first' | 'file-first' = 'fields-first',
): Promise<Reply> {
  const form = new FormData()
  const file = new Blob([new Uint8Array(bytes)])
  if (order === 'file-first') form.append('file', file, `input${ext}`)
  form.append('hash', hash)
  form.append('ext', ext)
  if (order === 'fields-first') form.append('file', file, `input${ext}`)
  const res = await fetch(`${gpu.url}${HEYGEM_PATHS.uploadFile}`, { method: 'POST', body: form })
  return { status: res.status, body: await res.json() }
}

/** Upload a random audio and video; returns their md5s. */
async function uploadInputs(gpu: FakeRunServer): Promise<{ audio: string; video: string }> {
  const audio = randomBytes(3000)
  const video = randomBytes(5000)
  data(await upload(gpu, audio, md5Buffer(audio), '.wav'), UploadFileData)
  data(await upload(gpu, video, md5Buffer(video), '.mp4'), UploadFileData)
  return { audio: md5Buffer(audio), video: md5Buffer(video) }
}

async function submit(
  gpu: FakeRunServer,
  inputs: { audio: string; video: string },
): Promise<string> {
  const reply = await call(gpu, HEYGEM_PATHS.submit, {
    audio_hash: inputs.audio,
    audio_ext: '.wav',
    video_hash: inputs.video,
    video_ext: '.mp4',
  })
  return data(reply, GpuSubmitData).task_id
}

async function progress(gpu: FakeRunServer, taskId: string): Promise<ProgressData> {
  return data(await call(gpu, `${HEYGEM_PATHS.progress}?task_id=${taskId}`), ProgressData)
}

const STAGES = ['queued', 'processing', 'synthesizing', 'encoding', 'done', 'error'] as const

describe('fake run_server', () => {
  test('stores an upload under its md5 and reports it present in check_files', async () => {
    const { gpu, dir } = await start()
    const bytes = randomBytes(10_000)
    const hash = md5Buffer(bytes)
    const stored = data(await upload(gpu, bytes, hash, '.wav'), UploadFileData)
    expect(stored).toEqual({ hash, ext: '.wav', size: 10_000, hash_matched: true })
    expect(await readFile(join(dir, `${hash}.wav`))).toEqual(bytes)

    const absent = md5Buffer('never uploaded')
    const check = await call(gpu, HEYGEM_PATHS.checkFiles, {
      files: [
        { hash, ext: '.wav' },
        { hash: absent, ext: '.mp4' },
      ],
    })
    expect(data(check, CheckFilesData)).toEqual({ [hash]: true, [absent]: false })
    expect(gpu.stats.uploads).toEqual([{ hash, size: 10_000 }])
  })

  test('accepts the file part before the hash and ext fields', async () => {
    const { gpu, dir } = await start()
    const bytes = randomBytes(2048)
    const hash = md5Buffer(bytes)
    const stored = data(await upload(gpu, bytes, hash, 'MP4', 'file-first'), UploadFileData)
    expect(stored).toEqual({ hash, ext: '.mp4', size: 2048, hash_matched: true })
    expect(await readFile(join(dir, `${hash}.mp4`))).toEqual(bytes)
  })

  test('stores an upload whose bytes do not match the claimed md5 under its real md5', async () => {
    const { gpu, dir } = await start()
    const bytes = randomBytes(4096)
    const real = md5Buffer(bytes)
    const claimed = md5Buffer('something else')
    const stored = data(await upload(gpu, bytes, claimed, '.wav'), UploadFileData)
    expect(stored).toEqual({ hash: real, ext: '.wav', size: 4096, hash_matched: false })
    expect(await readFile(join(dir, `${real}.wav`))).toEqual(bytes)
    const check = await call(gpu, HEYGEM_PATHS.checkFiles, {
      files: [
        { hash: claimed, ext: '.wav' },
        { hash: real, ext: '.wav' },
      ],
    })
    expect(data(check, CheckFilesData)).toEqual({ [claimed]: false, [real]: true })
  })

  test('answers 404 to a submit whose audio or video is not in its pool', async () => {
    const { gpu } = await start()
    const audio = randomBytes(100)
    const video = md5Buffer('missing video')
    const body = {
      audio_hash: md5Buffer(audio),
      audio_ext: '.wav',
      video_hash: video,
      video_ext: '.mp4',
    }
    expect(failure(await call(gpu, HEYGEM_PATHS.submit, body))).toEqual({
      status: 404,
      code: 404,
      msg: `音频文件不存在: ${md5Buffer(audio)}`,
    })
    data(await upload(gpu, audio, md5Buffer(audio), '.wav'), UploadFileData)
    expect(failure(await call(gpu, HEYGEM_PATHS.submit, body))).toEqual({
      status: 404,
      code: 404,
      msg: `视频文件不存在: ${video}`,
    })
    expect(gpu.stats.submissions).toEqual([])
  })

  test('runs a job through its stages to done and serves the result made from its inputs', async () => {
    const { gpu } = await start({ durationMs: 600, resultSize: 100_000 })
    const inputs = await uploadInputs(gpu)
    const taskId = await submit(gpu, inputs)
    expect(taskId).toMatch(/^[0-9a-f]{32}$/)

    const seen: ProgressData[] = []
    const done = await waitFor(
      async () => {
        const p = await progress(gpu, taskId)
        seen.push(p)
        return p.status === 'done' && p
      },
      { what: 'the job to finish', intervalMs: 10 },
    )
    expect(done).toMatchObject({
      progress: 100,
      result_url: `/api/heygem/download?task_id=${taskId}`,
    })
    for (const [prev, next] of seen.slice(1).map((p, i) => [seen[i], p] as const)) {
      expect(next.progress).toBeGreaterThanOrEqual(prev?.progress ?? 0)
      expect(STAGES.indexOf(next.status)).toBeGreaterThanOrEqual(
        STAGES.indexOf(prev?.status ?? 'queued'),
      )
    }
    for (const p of seen.filter((s) => s.status === 'synthesizing')) {
      expect(p.total_frames).toBe(250)
      expect(p.progress).toBeGreaterThanOrEqual(10)
      expect(p.progress).toBeLessThan(90)
    }
    expect(gpu.stats.completed).toEqual([taskId])

    const res = await fetch(`${gpu.url}${done.result_url ?? ''}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('video/mp4')
    const bytes = Buffer.from(await res.arrayBuffer())
    expect(bytes.equals(fakeResultBytes(inputs.audio, inputs.video, 100_000))).toBe(true)
  })

  test('reports each stage at its share of the run, from elapsed time', async () => {
    let now = 0
    const { gpu } = await start({ durationMs: 1000, clock: () => now })
    const taskId = await submit(gpu, await uploadInputs(gpu))
    const at = async (ms: number): Promise<ProgressData> => {
      now = ms
      return progress(gpu, taskId)
    }
    expect(await at(0)).toMatchObject({ status: 'processing', progress: 0, queue_position: 0 })
    expect(await at(50)).toMatchObject({ status: 'processing', progress: 5 })
    expect(await at(500)).toMatchObject({
      status: 'synthesizing',
      progress: 50,
      current_frame: 125,
      total_frames: 250,
    })
    expect(await at(950)).toMatchObject({ status: 'encoding', progress: 95 })
    expect(await at(1000)).toMatchObject({ status: 'done', progress: 100 })
  })

  test('runs two jobs one at a time, in the order they were submitted', async () => {
    const { gpu } = await start({ durationMs: 500 })
    const inputs = await uploadInputs(gpu)
    const first = await submit(gpu, inputs)
    const second = await submit(gpu, inputs)
    expect(await progress(gpu, second)).toMatchObject({
      status: 'queued',
      queue_position: 1,
      progress: 0,
    })
    const queue = data(
      await call(gpu, HEYGEM_PATHS.queue),
      z.looseObject({ current_task_id: z.string() }),
    )
    expect(queue).toEqual({ queued: 1, processing: 1, current_task_id: first })

    const running = (p: ProgressData): boolean => !['queued', 'done', 'error'].includes(p.status)
    const seen: [ProgressData, ProgressData][] = []
    await waitFor(
      async () => {
        // The second job is read before the first: jobs only move forward, so "second running,
        // then first still running" proves they overlapped (reading both at once would not).
        const b = await progress(gpu, second)
        const a = await progress(gpu, first)
        const pair: [ProgressData, ProgressData] = [a, b]
        seen.push(pair)
        return pair[1].status === 'done'
      },
      { what: 'both jobs to finish', intervalMs: 10 },
    )
    expect(seen.filter(([a, b]) => running(a) && running(b))).toEqual([])
    // The second job leaves the queue only once the first has ended.
    expect(seen.filter(([a, b]) => b.status !== 'queued' && a.status !== 'done')).toEqual([])
    expect(gpu.stats.completed).toEqual([first, second])
    expect(gpu.stats.maxConcurrent).toBe(1)
    expect(gpu.stats.submissions.map((s) => s.taskId)).toEqual([first, second])
  })

  test('fails the next job with the given message, then runs the following one normally', async () => {
    const { gpu } = await start({ durationMs: 300 })
    const inputs = await uploadInputs(gpu)
    gpu.failNext('未检测到人脸')
    const bad = await submit(gpu, inputs)
    const good = await submit(gpu, inputs)
    const failed = await waitFor(
      async () => {
        const p = await progress(gpu, bad)
        return p.status === 'error' && p
      },
      { what: 'the job to fail' },
    )
    expect(failed).toMatchObject({ error_msg: '未检测到人脸' })
    await waitFor(async () => (await progress(gpu, good)).status === 'done', {
      what: 'the next job to finish',
    })
    const res = await call(gpu, `${HEYGEM_PATHS.download}?task_id=${bad}`)
    expect(failure(res)).toEqual({ status: 400, code: 400, msg: '任务尚未完成' })
  })

  test('freezes the next job at the given progress for ever, holding the queue behind it', async () => {
    let now = 0
    const { gpu } = await start({ durationMs: 1000, clock: () => now })
    const inputs = await uploadInputs(gpu)
    gpu.hangNext(20)
    const hung = await submit(gpu, inputs)
    const behind = await submit(gpu, inputs)
    now = 1_000_000
    expect(await progress(gpu, hung)).toMatchObject({ status: 'synthesizing', progress: 20 })
    expect(await progress(gpu, behind)).toMatchObject({ status: 'queued', queue_position: 1 })
    expect(gpu.stats.completed).toEqual([])
  })

  test('forgets its tasks on restart but keeps its files, on the same port', async () => {
    const { gpu } = await start({ durationMs: 300 })
    const inputs = await uploadInputs(gpu)
    const taskId = await submit(gpu, inputs)
    const port = gpu.port
    await gpu.restart()
    expect(gpu.port).toBe(port)
    const gone = await call(gpu, `${HEYGEM_PATHS.progress}?task_id=${taskId}`)
    expect(failure(gone)).toMatchObject({ status: 404, code: 404 })
    const check = await call(gpu, HEYGEM_PATHS.checkFiles, {
      files: [
        { hash: inputs.audio, ext: '.wav' },
        { hash: inputs.video, ext: '.mp4' },
      ],
    })
    expect(data(check, CheckFilesData)).toEqual({ [inputs.audio]: true, [inputs.video]: true })
    const health = HealthReply.parse((await call(gpu, HEYGEM_PATHS.health)).body)
    expect(health).toMatchObject({
      code: 0,
      initialized: true,
      queue: { queued: 0, processing: 0 },
    })
    // A new job runs after the restart.
    const again = await submit(gpu, inputs)
    await waitFor(async () => (await progress(gpu, again)).status === 'done', {
      what: 'a job after the restart to finish',
    })
  })

  test('refuses to download a task that is not done, and an unknown one', async () => {
    const { gpu } = await start({ durationMs: 60_000 })
    const taskId = await submit(gpu, await uploadInputs(gpu))
    const early = await call(gpu, `${HEYGEM_PATHS.download}?task_id=${taskId}`)
    expect(failure(early)).toEqual({ status: 400, code: 400, msg: '任务尚未完成' })
    const unknown = await call(gpu, `${HEYGEM_PATHS.download}?task_id=${'0'.repeat(32)}`)
    expect(failure(unknown)).toMatchObject({ status: 404, code: 404 })
  })

  test('answers bad input with an error envelope and keeps serving', async () => {
    const { gpu } = await start()
    const badJson = await fetch(`${gpu.url}${HEYGEM_PATHS.submit}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"audio_hash": ',
    })
    expect(failure({ status: badJson.status, body: await badJson.json() })).toMatchObject({
      status: 400,
      code: 400,
    })
    expect(failure(await call(gpu, HEYGEM_PATHS.checkFiles, { files: 'x' }))).toMatchObject({
      status: 400,
      code: 400,
    })
    expect(failure(await call(gpu, HEYGEM_PATHS.progress))).toMatchObject({ status: 400 })
    expect(failure(await call(gpu, '/api/heygem/nope'))).toMatchObject({ status: 404, code: 404 })
    const notMultipart = await call(gpu, HEYGEM_PATHS.uploadFile, { file: 'x' })
    expect(failure(notMultipart)).toMatchObject({ status: 400, code: 400 })
    const noFile = new FormData()
    noFile.append('hash', md5Buffer('x'))
    const res = await fetch(`${gpu.url}${HEYGEM_PATHS.uploadFile}`, {
      method: 'POST',
      body: noFile,
    })
    expect(failure({ status: res.status, body: await res.json() })).toMatchObject({ status: 400 })
    const badHash = await upload(gpu, randomBytes(10), 'not-an-md5', '.wav')
    expect(failure(badHash)).toMatchObject({ status: 400, code: 400 })
    expect(HealthReply.parse((await call(gpu, HEYGEM_PATHS.health)).body).code).toBe(0)
  })
})

describe('fakeResultBytes', () => {
  test('is a deterministic mp4-looking blob of the asked size, different for other inputs', () => {
    const a = md5Buffer('audio')
    const v = md5Buffer('video')
    const bytes = fakeResultBytes(a, v)
    expect(bytes.length).toBe(64 * 1024)
    expect(bytes.subarray(4, 8).toString('latin1')).toBe('ftyp')
    expect(bytes.subarray(36, 40).toString('latin1')).toBe('mdat')
    expect(bytes.equals(fakeResultBytes(a, v))).toBe(true)
    expect(bytes.equals(fakeResultBytes(v, a))).toBe(false)
    expect(fakeResultBytes(a, v, 200_000).subarray(0, 32)).toEqual(bytes.subarray(0, 32))
    expect(fakeResultBytes(a, v, 10).length).toBe(10)
  })
})
