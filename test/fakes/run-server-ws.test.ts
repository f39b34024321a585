import { randomBytes } from 'node:crypto'
import { describe, expect, onTestFinished, test } from 'vitest'
import WebSocket from 'ws'
import { tempDir } from '../helpers/temp-dir.js'
import { record, submit, upload } from './run-server-client.js'
import { startFakeRunServer, type FakeRunServer, type FakeRunServerOptions } from './run-server.js'

const SECRET = 'ws-secret'

async function start(options: Omit<FakeRunServerOptions, 'dir'> = {}): Promise<FakeRunServer> {
  const dir = await tempDir('fake-run-server-ws')
  const gpu = await startFakeRunServer({
    durationMs: 600,
    wsIntervalMs: 20,
    apiSecret: SECRET,
    ...options,
    dir,
  })
  onTestFinished(() => gpu.close())
  return gpu
}

/** Every frame the server sends, as text, until it closes the socket. */
function readUntilClose(url: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const frames: string[] = []
    ws.on('message', (data: Buffer) => frames.push(data.toString('utf8')))
    ws.on('close', () => {
      resolve(frames)
    })
    ws.on('error', reject)
  })
}

function wsUrl(gpu: FakeRunServer, taskId: string, token = SECRET): string {
  return `${gpu.url.replace('http', 'ws')}/ws/progress/${taskId}?token=${token}`
}

async function newTask(gpu: FakeRunServer): Promise<string> {
  const audio = await upload(gpu, randomBytes(1000), { ext: '.wav', secret: SECRET })
  const video = await upload(gpu, randomBytes(1000), { ext: '.mp4', secret: SECRET })
  return String((await submit(gpu, { audio, video }, SECRET)).task_id)
}

const ORDER = ['queued', 'processing', 'synthesizing', 'done']

describe('fake run_server progress WebSocket', () => {
  test('pushes each change of status, progress or frame, ends with the terminal one and closes', async () => {
    const gpu = await start()
    const first = await newTask(gpu)
    const second = await newTask(gpu)
    const frames = await readUntilClose(wsUrl(gpu, second))
    // Python's json.dumps, not jsonify: insertion order and ", " / ": " separators.
    expect(frames[0]?.startsWith('{"code": 0, "data": {"task_id": ')).toBe(true)
    const messages = frames.map((f) => record(JSON.parse(f)))
    const data = messages.map((m) => record(m.data))
    expect(messages.every((m) => m.code === 0)).toBe(true)
    expect(data.map((d) => d.task_id).every((id) => id === second)).toBe(true)
    const keys = data.map(
      (d) => `${String(d.status)}|${String(d.progress)}|${String(d.current_frame)}`,
    )
    expect(new Set(keys).size).toBe(keys.length)
    const statuses = data.map((d) => String(d.status))
    expect(statuses[0]).toBe('queued')
    expect(statuses.at(-1)).toBe('done')
    expect(statuses.includes('synthesizing')).toBe(true)
    const ranks = statuses.map((s) => ORDER.indexOf(s))
    expect(ranks).toEqual([...ranks].sort((a, b) => a - b))
    expect(data.at(-1)).toMatchObject({ progress: 100, message: '合成完成', error: '' })
    expect(gpu.stats.asked.has(second)).toBe(true)
    expect(gpu.stats.completed).toEqual([first, second])
  })

  test("sends a failed job's terminal message with its reason", async () => {
    const gpu = await start()
    gpu.failNext('未检测到人脸')
    const taskId = await newTask(gpu)
    const frames = await readUntilClose(wsUrl(gpu, taskId))
    expect(record(JSON.parse(frames.at(-1) ?? '{}')).data).toMatchObject({
      status: 'error',
      error: '未检测到人脸',
      message: '合成失败: 未检测到人脸',
    })
  })

  test('answers a bad token with one 401 message, and an unknown task with a 404', async () => {
    const gpu = await start()
    const taskId = await newTask(gpu)
    expect(await readUntilClose(wsUrl(gpu, taskId, 'wrong'))).toEqual([
      '{"code": 401, "msg": "\\u9274\\u6743\\u5931\\u8d25"}',
    ])
    const unknown = await readUntilClose(wsUrl(gpu, 'feedfacefeedface'))
    expect(unknown.map((f) => JSON.parse(f) as unknown)).toEqual([
      { code: 404, msg: '任务 feedfacefeedface 不存在' },
    ])
  })

  test('takes no token when no secret is set', async () => {
    const gpu = await start({ apiSecret: '', durationMs: 100 })
    const audio = await upload(gpu, randomBytes(100), { ext: '.wav' })
    const video = await upload(gpu, randomBytes(100), { ext: '.mp4' })
    const taskId = String((await submit(gpu, { audio, video })).task_id)
    const frames = await readUntilClose(`${gpu.url.replace('http', 'ws')}/ws/progress/${taskId}`)
    expect(record(JSON.parse(frames.at(-1) ?? '{}')).data).toMatchObject({ status: 'done' })
  })
})
