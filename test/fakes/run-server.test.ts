import { connect } from 'node:net'
import { randomBytes } from 'node:crypto'
import { describe, expect, onTestFinished, test } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { fakeResultBytes } from './result-bytes.js'
import { call, dataOf, progressOf, submit, upload, waitForProgress } from './run-server-client.js'
import { startFakeRunServer, type FakeRunServer, type FakeRunServerOptions } from './run-server.js'

async function start(options: Omit<FakeRunServerOptions, 'dir'> = {}): Promise<FakeRunServer> {
  const dir = await tempDir('fake-run-server')
  const gpu = await startFakeRunServer({ durationMs: 400, ...options, dir })
  onTestFinished(() => gpu.close())
  return gpu
}

/** Resolves with the error code of a TCP connect to the port ('' when it connected). */
function connectResult(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve('')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code ?? 'error')
    })
  })
}

async function inputs(gpu: FakeRunServer): Promise<{ audio: string; video: string }> {
  const audio = await upload(gpu, randomBytes(3000), { ext: '.wav' })
  const video = await upload(gpu, randomBytes(5000), { ext: '.mp4' })
  return { audio, video }
}

async function health(gpu: FakeRunServer): Promise<Record<string, unknown>> {
  const reply = await call(gpu.url, { path: '/api/heygem/health' })
  return reply.body as Record<string, unknown>
}

describe('fake run_server', () => {
  test('keeps its port closed while its models load, then opens with initialized: true', async () => {
    const gpu = await start({ loadMs: 1500 })
    expect(gpu.port).toBeGreaterThan(0)
    expect(await connectResult(gpu.port)).toBe('ECONNREFUSED')
    await gpu.ready
    expect(await connectResult(gpu.port)).toBe('')
    expect(await health(gpu)).toMatchObject({ code: 0, msg: 'ok', initialized: true })
  })

  test('never opens when closed while still loading', async () => {
    const gpu = await start({ loadMs: 60_000 })
    await gpu.close()
    await gpu.ready
    expect(await connectResult(gpu.port)).toBe('ECONNREFUSED')
  })

  test('forgets every task on restart, keeps its files, and loads again before reopening', async () => {
    const gpu = await start({ durationMs: 60_000 })
    const files = await inputs(gpu)
    const taskId = String((await submit(gpu, files)).task_id)
    const port = gpu.port
    const restarted = gpu.restart({ loadMs: 800 })
    await waitFor(async () => (await connectResult(port)) === 'ECONNREFUSED', {
      what: 'the port to close',
    })
    await restarted
    expect(gpu.port).toBe(port)
    const gone = await call(gpu.url, { path: `/api/heygem/progress?task_id=${taskId}` })
    expect({ status: gone.status, body: gone.body }).toEqual({
      status: 404,
      body: { code: 404, msg: `任务 ${taskId} 不存在` },
    })
    expect(gpu.stats.forgotten).toEqual([taskId])
    const check = await call(gpu.url, {
      path: '/api/heygem/check_files',
      json: { files: [{ hash: files.audio, ext: '.wav' }] },
    })
    expect(dataOf(check)).toEqual({ [files.audio]: true })
    expect(await health(gpu)).toMatchObject({ initialized: true, queue: { total_tasks: 0 } })
  })

  test('runs one job at a time; the others wait queued, told their place', async () => {
    const gpu = await start({ durationMs: 300 })
    const files = await inputs(gpu)
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const audio = await upload(gpu, randomBytes(1000), { ext: '.wav' })
      ids.push(String((await submit(gpu, { audio, video: files.video })).task_id))
    }
    const [first = '', second = '', third = ''] = ids
    expect(await progressOf(gpu, second)).toMatchObject({
      status: 'queued',
      queue_position: 1,
      progress: 1,
      message: '排队等待中... (第1位)',
    })
    expect(await progressOf(gpu, third)).toMatchObject({
      queue_position: 2,
      message: '排队等待中... (第2位)',
    })
    expect(await health(gpu)).toMatchObject({
      queue: { total_tasks: 3, processing: 1, queued: 2, max_concurrent: 1 },
    })
    const overlaps: string[] = []
    await waitFor(
      async () => {
        // Later jobs are read first: jobs only move forward, so "a later one running, then an
        // earlier one still running" would prove that they overlapped.
        const states = (await Promise.all([third, second, first].map((id) => progressOf(gpu, id))))
          .reverse()
          .map((p) => String(p.status))
        const active = states.filter((s) => !['queued', 'done', 'error'].includes(s))
        if (active.length > 1) overlaps.push(states.join(','))
        return states.every((s) => s === 'done')
      },
      { what: 'all three jobs to finish', intervalMs: 10 },
    )
    expect(overlaps).toEqual([])
    expect(gpu.stats.completed).toEqual([first, second, third])
    expect(gpu.stats.maxConcurrent).toBe(1)
  })

  test("moves a job through run_server's progress words and times", async () => {
    let now = 0
    const gpu = await start({ durationMs: 10_000, clock: () => now })
    const taskId = String((await submit(gpu, await inputs(gpu))).task_id)
    expect(taskId).toMatch(/^[0-9a-f]{16}$/)
    const at = async (ms: number): Promise<Record<string, unknown>> => {
      now = ms
      return progressOf(gpu, taskId)
    }
    expect(await at(0)).toMatchObject({ status: 'processing', progress: 5, message: '开始处理...' })
    expect(await at(700)).toMatchObject({
      status: 'processing',
      message: '视频信息: 1080x1920 25.0fps 预计250帧',
      total_frames: 250,
    })
    expect(await at(2000)).toMatchObject({
      status: 'processing',
      progress: 15,
      message: '预处理中... (2s)',
    })
    const mid = await at(6000)
    expect(mid).toMatchObject({ status: 'synthesizing', total_frames: 250 })
    expect(mid.message).toBe(
      `合成中 ${String(mid.current_frame)}/250 帧 (${String(mid.progress)}%)`,
    )
    expect(await at(9999)).toMatchObject({ status: 'synthesizing', progress: 94 })
    const done = await at(10_000)
    expect(done).toMatchObject({ status: 'done', progress: 100, message: '合成完成', error: '' })
    expect(Number(done.finished_at) - Number(done.started_at)).toBeCloseTo(10, 3)
    expect(Number(done.started_at)).toBeGreaterThan(1_600_000_000)
  })

  test('fails the next job with the engine reason in error and message, then runs the next', async () => {
    const gpu = await start({ durationMs: 300 })
    const files = await inputs(gpu)
    gpu.failNext('未检测到人脸')
    const bad = String((await submit(gpu, files)).task_id)
    const other = await upload(gpu, randomBytes(800), { ext: '.wav' })
    const good = String((await submit(gpu, { audio: other, video: files.video })).task_id)
    const failed = await waitForProgress(gpu, bad, { until: (p) => p.status === 'error' })
    expect(failed).toMatchObject({
      progress: 0,
      message: '合成失败: 未检测到人脸',
      error: '未检测到人脸',
    })
    expect(Number(failed.finished_at)).toBeGreaterThan(0)
    await waitForProgress(gpu, good, { until: (p) => p.status === 'done' })
    // A failed job leaves no cache: the same inputs run again.
    expect(await submit(gpu, files)).not.toHaveProperty('cached')
  })

  test('freezes the next job at the given progress for ever, holding the queue behind it', async () => {
    let now = 0
    const gpu = await start({ durationMs: 1000, clock: () => now })
    const files = await inputs(gpu)
    gpu.hangNext(20)
    const hung = String((await submit(gpu, files)).task_id)
    const other = await upload(gpu, randomBytes(800), { ext: '.wav' })
    const behind = String((await submit(gpu, { audio: other, video: files.video })).task_id)
    now = 1_000_000
    expect(await progressOf(gpu, hung)).toMatchObject({ status: 'synthesizing', progress: 20 })
    expect(await progressOf(gpu, behind)).toMatchObject({ status: 'queued', queue_position: 1 })
    expect(gpu.stats.completed).toEqual([])
  })

  test('answers the same audio and video again from its cache, done at once', async () => {
    const gpu = await start({ durationMs: 200, resultSize: 5000 })
    const files = await inputs(gpu)
    const first = String((await submit(gpu, files)).task_id)
    await waitForProgress(gpu, first, { until: (p) => p.status === 'done' })
    await call(gpu.url, { path: `/api/heygem/download?task_id=${first}` })
    const again = await submit(gpu, files)
    const key = md5Buffer(`${files.audio}_${files.video}`).slice(0, 16)
    expect(again).toMatchObject({ task_id: key, cached: true })
    expect(await progressOf(gpu, key)).toMatchObject({
      status: 'done',
      progress: 100,
      message: '合成完成（缓存命中）',
    })
    const res = await fetch(`${gpu.url}/api/heygem/download?task_id=${key}`)
    const bytes = Buffer.from(await res.arrayBuffer())
    expect(bytes.equals(fakeResultBytes(files.audio, files.video, 5000))).toBe(true)
    expect(gpu.stats.submissions.map((s) => s.cached)).toEqual([false, true])
    expect(gpu.stats.completed).toEqual([first])
  })

  test('checks no secret when none is set, and the secret (with or without Bearer) when set', async () => {
    const open = await start()
    expect((await call(open.url, { path: '/api/heygem/queue' })).status).toBe(200)
    const locked = await start({ apiSecret: ' s3 ' })
    const ask = (authorization?: string) =>
      call(locked.url, {
        path: '/api/heygem/queue',
        headers: authorization === undefined ? {} : { authorization },
      })
    expect((await ask()).status).toBe(401)
    expect((await ask('Bearer s3')).status).toBe(200)
    expect((await ask('s3')).status).toBe(200)
    expect((await ask('  Bearer s3  ')).status).toBe(200)
    expect((await ask('Basic s3')).status).toBe(401)
  })
})
