import { randomBytes } from 'node:crypto'
import { readFile, stat, utimes } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { describe, expect, onTestFinished, test } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { fakeResultBytes } from './result-bytes.js'
import { call, dataOf, submit, upload, waitForProgress } from './run-server-client.js'
import { startFakeRunServer, type FakeRunServer, type FakeRunServerOptions } from './run-server.js'

async function start(options: Omit<FakeRunServerOptions, 'dir'> = {}): Promise<FakeRunServer> {
  const dir = await tempDir('fake-run-server-files')
  const gpu = await startFakeRunServer({ durationMs: 150, ...options, dir })
  onTestFinished(() => gpu.close())
  return gpu
}

/** Run a job on fresh inputs to done; its id and inputs. */
async function doneJob(
  gpu: FakeRunServer,
): Promise<{ taskId: string; audio: string; video: string }> {
  const audio = await upload(gpu, randomBytes(2000), { ext: '.wav' })
  const video = await upload(gpu, randomBytes(3000), { ext: '.mp4' })
  const taskId = String((await submit(gpu, { audio, video })).task_id)
  await waitForProgress(gpu, taskId, { until: (p) => p.status === 'done' })
  return { taskId, audio, video }
}

const TWO_HOURS_AGO = new Date(Date.now() - 2 * 3600 * 1000)

describe('fake run_server files', () => {
  test('removes results older than the TTL on its sweep; the pool stays; download then 404', async () => {
    const gpu = await start({ fileTtlSeconds: 3600, cleanupIntervalMs: 30 })
    const old = await doneJob(gpu)
    const fresh = await doneJob(gpu)
    const download = (taskId: string) =>
      call(gpu.url, { path: `/api/heygem/download?task_id=${taskId}` })
    expect((await download(old.taskId)).status).toBe(200)
    const result = join(gpu.paths.outputs, old.taskId)
    await utimes(result, TWO_HOURS_AGO, TWO_HOURS_AGO)
    const pooled = join(gpu.paths.store, `${old.audio}.wav`)
    await utimes(pooled, TWO_HOURS_AGO, TWO_HOURS_AGO)
    const sweeps = gpu.stats.sweeps
    await waitFor(() => gpu.stats.sweeps > sweeps + 1, { what: 'a sweep after the aging' })
    const gone = await download(old.taskId)
    expect({ status: gone.status, body: gone.body }).toEqual({
      status: 404,
      body: { code: 404, msg: '结果文件不存在' },
    })
    expect((await download(fresh.taskId)).status).toBe(200)
    // uploads/store is exempt from the sweep.
    expect((await stat(pooled)).size).toBeGreaterThan(0)
  })

  test('refreshes the mtime of a file that check_files finds', async () => {
    const gpu = await start()
    const audio = await upload(gpu, randomBytes(500), { ext: '.wav' })
    const path = join(gpu.paths.store, `${audio}.wav`)
    await utimes(path, TWO_HOURS_AGO, TWO_HOURS_AGO)
    const before = Date.now()
    const reply = await call(gpu.url, {
      path: '/api/heygem/check_files',
      json: { files: [{ hash: audio, ext: '.wav' }] },
    })
    expect(dataOf(reply)).toEqual({ [audio]: true })
    expect((await stat(path)).mtimeMs).toBeGreaterThanOrEqual(before - 1000)
  })

  test('does not rewrite a file already present under the claimed hash', async () => {
    const gpu = await start()
    const first = randomBytes(700)
    const hash = await upload(gpu, first, { ext: '.mp4' })
    const reply = await call(gpu.url, {
      path: '/api/heygem/upload_file',
      form: { hash, ext: '.mp4', file: { bytes: randomBytes(900), filename: 'other.mp4' } },
    })
    expect(dataOf(reply)).toEqual({ hash, server_path: join(gpu.paths.store, `${hash}.mp4`) })
    expect(await readFile(join(gpu.paths.store, `${hash}.mp4`))).toEqual(first)
  })

  test('stores an upload without ext or usable name as .bin', async () => {
    const gpu = await start()
    const bytes = randomBytes(300)
    const reply = await call(gpu.url, {
      path: '/api/heygem/upload_file',
      form: { hash: 'x', file: { bytes, filename: 'blob' } },
    })
    expect(dataOf(reply)).toEqual({
      hash: md5Buffer(bytes),
      server_path: join(gpu.paths.store, `${md5Buffer(bytes)}.bin`),
    })
  })

  test('serves byte ranges of a result with 206, and 416 past its end', async () => {
    const gpu = await start({ resultSize: 10_000 })
    const job = await doneJob(gpu)
    const whole = fakeResultBytes(job.audio, job.video, 10_000)
    const get = async (range: string) => {
      const res = await fetch(`${gpu.url}/api/heygem/download?task_id=${job.taskId}`, {
        headers: { range },
      })
      return { res, bytes: Buffer.from(await res.arrayBuffer()) }
    }
    const head = await get('bytes=0-1023')
    expect(head.res.status).toBe(206)
    expect(head.res.headers.get('content-range')).toBe('bytes 0-1023/10000')
    expect(head.bytes.equals(whole.subarray(0, 1024))).toBe(true)
    const tail = await get('bytes=-500')
    expect(tail.res.headers.get('content-range')).toBe('bytes 9500-9999/10000')
    expect(tail.bytes.equals(whole.subarray(9500))).toBe(true)
    const open = await get('bytes=9000-')
    expect(open.bytes.equals(whole.subarray(9000))).toBe(true)
    expect((await get('bytes=20000-')).res.status).toBe(416)
    const full = await get('')
    expect(full.res.status).toBe(200)
    expect(full.bytes.equals(whole)).toBe(true)
  })

  test('runs a legacy upload from its two files, kept under uploads/{task_id}', async () => {
    const gpu = await start({ resultSize: 2048 })
    const audio = randomBytes(1000)
    const video = randomBytes(1500)
    const reply = await call(gpu.url, {
      path: '/api/heygem/upload',
      form: {
        audio: { bytes: audio, filename: 'speech.mp3' },
        video: { bytes: video, filename: 'me.mov' },
      },
    })
    const taskId = String(dataOf(reply).task_id)
    expect(await readFile(join(gpu.paths.uploads, taskId, 'audio.mp3'))).toEqual(audio)
    expect(await readFile(join(gpu.paths.uploads, taskId, 'video.mov'))).toEqual(video)
    await waitForProgress(gpu, taskId, { until: (p) => p.status === 'done' })
    const res = await fetch(`${gpu.url}/api/heygem/download?task_id=${taskId}`)
    const bytes = Buffer.from(await res.arrayBuffer())
    expect(bytes.equals(fakeResultBytes(md5Buffer(audio), md5Buffer(video), 2048))).toBe(true)
    expect(dirname(join(gpu.paths.outputs, taskId, `${taskId}.mp4`))).toBe(
      join(gpu.paths.outputs, taskId),
    )
  })
})
