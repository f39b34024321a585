import { createHash } from 'node:crypto'
import { request } from 'node:http'
import { describe, expect, it } from 'vitest'
import { publish } from '../../lib/mqtt.js'
import { download, finalStatus, media, submitTask, upload } from '../helpers/pc.js'
import { startHttpFaultProxy } from '../helpers/http-fault-proxy.js'
import {
  TEST_SECRETS,
  startTestBridge,
  startTestGateway,
  startTestGpu,
  testMqttClient,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const GPU_AUTH = { authorization: `Bearer gpu.gpu-1.${TEST_SECRETS.gpu}` }

interface Reply {
  readonly status: number
  readonly body: { code?: number; data?: Record<string, unknown> }
}

/**
 * POST a result as a bridge would, with node:http so a reply that comes before the body is sent
 * is read (an early refusal). `length`: the Content-Length to declare (null: chunked); `bytes`
 * null sends no body at all (only the headers, then waits for the answer). `pieces`: the body is
 * sent in that many pieces `pieceGapMs` apart (a slow uplink); else in 4 KB pieces at once, so an
 * early answer can overtake the rest.
 */
function postResult(
  url: string,
  query: string,
  body: {
    readonly bytes: Buffer | null
    readonly length: number | null
    readonly pieces?: number
    readonly pieceGapMs?: number
  },
): Promise<Reply> {
  const { bytes, length } = body
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {
      ...GPU_AUTH,
      'content-type': 'application/octet-stream',
      ...(length === null ? {} : { 'content-length': String(length) }),
    }
    const req = request(`${url}?${query}`, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Reply['body'] })
      })
      res.on('error', reject)
    })
    req.on('error', () => undefined) // the server may close while we still write: the reply counts
    if (bytes === null) {
      req.flushHeaders()
      return
    }
    const piece = body.pieces === undefined ? 4096 : Math.ceil(bytes.length / body.pieces)
    let at = 0
    const next = (): void => {
      while (at < bytes.length) {
        req.write(bytes.subarray(at, at + piece))
        at += piece
        if (body.pieceGapMs !== undefined && at < bytes.length) {
          setTimeout(next, body.pieceGapMs)
          return
        }
      }
      req.end()
    }
    next()
  })
}

const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex')

/** A gateway, a GPU whose job runs for a minute, its bridge, and one task running on it. */
async function runningTask(
  label: string,
  overrides: { resultMaxBytes?: number; execTimeoutMs?: number; stallTimeoutMs?: number } = {},
) {
  const dir = await tempDir(label)
  const gateway = await startTestGateway(dir, overrides)
  const gpu = await startTestGpu(dir, 60_000)
  await startTestBridge(dir, { gateway, gpu })
  const audioBytes = media(`${label}-a`, 'audio')
  const audio = await upload(gateway.url, audioBytes, '.wav')
  const video = await upload(gateway.url, media(`${label}-v`, 'video'), '.mp4')
  const id = String((await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id)
  await waitFor(() => gateway.store.get(id)?.state === 'processing', { what: 'claimed' })
  await waitFor(() => gpu.stats.submissions.length === 1, { what: 'the job on the GPU' })
  const resultUrl = `${gateway.url}/api/relay/tasks/${id}/result`
  return { gateway, gpu, id, audio, audioSize: audioBytes.length, resultUrl }
}

describe('the result hand-over', () => {
  it('retries a hand-over answered 500, then 507, until the gateway takes it: the GPU ran the job once', async () => {
    const dir = await tempDir('handover-retry')
    const gateway = await startTestGateway(dir)
    const proxy = await startHttpFaultProxy(
      gateway.url,
      (req) => req.method === 'POST' && (req.url ?? '').includes('/result'),
    )
    proxy.failNext(
      { status: 500, code: 'INTERNAL', msg: '服务器内部错误，请稍后重试' },
      {
        status: 507,
        code: 'DISK_FULL',
        msg: '服务器磁盘空间不足，暂时无法接收文件或任务，请稍后再试',
      },
    )
    const gpu = await startTestGpu(dir, 300)
    await startTestBridge(dir, { gateway: { url: proxy.url, mqttUrl: gateway.mqttUrl }, gpu })
    const audio = await upload(gateway.url, media('r-a', 'audio'), '.wav')
    const video = await upload(gateway.url, media('r-v', 'video'), '.mp4')
    const id = String(
      (await submitTask(gateway.url, { audio, video, licenseKey: 'K' })).data.task_id,
    )

    expect((await finalStatus(gateway.url, id)).status).toBe('done')
    expect(gateway.store.get(id)).toMatchObject({ attempt: 1, result_type: 'video/mp4' })
    expect(proxy.seen()).toBe(3) // 500, 507, accepted
    expect(gpu.stats.submissions).toHaveLength(1)
    const res = await fetch(`${gateway.url}/api/heygem/download?task_id=${id}`)
    expect(res.headers.get('content-type')).toBe('video/mp4')
    expect((await res.arrayBuffer()).byteLength).toBe(32 * 1024)
  })

  it('refuses a result over RESULT_MAX_BYTES (413, declared or streamed), takes one result per attempt (409 naming it), and refuses a done naming another file', async () => {
    const { gateway, id, audio, audioSize, resultUrl } = await runningTask('handover-limits', {
      resultMaxBytes: 10_000,
    })
    const query = 'attempt=1&ext=.mp4'

    // Declared too large: answered from the headers alone (no body is ever sent here).
    const declared = await postResult(resultUrl, query, { bytes: null, length: 20_000 })
    expect(declared.status).toBe(413)
    expect(declared.body.data).toMatchObject({ error: 'RESULT_TOO_LARGE' })
    // Chunked, with no length: cut off once past the limit.
    const streamed = await postResult(resultUrl, query, {
      bytes: Buffer.alloc(50_000, 7),
      length: null,
    })
    expect(streamed.status).toBe(413)
    expect(streamed.body.data).toMatchObject({ error: 'RESULT_TOO_LARGE' })

    const bytes = Buffer.alloc(2_000, 1)
    const stored = await postResult(resultUrl, query, { bytes, length: bytes.length })
    expect(stored.status).toBe(200)
    expect(stored.body.data).toMatchObject({ hash: md5(bytes), size: bytes.length })
    const again = await postResult(resultUrl, query, {
      bytes: Buffer.alloc(3_000, 2),
      length: 3_000,
    })
    expect(again.status).toBe(409)
    expect(again.body.data).toEqual({
      error: 'RESULT_ALREADY_STORED',
      hash: md5(bytes),
      ext: '.mp4',
      size: bytes.length,
    })

    // A done naming the task's own input (a file in the pool, of the right size) is refused.
    const gpuSide = await testMqttClient(gateway.mqttUrl, 'gateway')
    await publish(gpuSide, {
      topic: 'relay/gpus/gpu-1/events',
      payload: JSON.stringify({
        v: 1,
        kind: 'done',
        taskId: id,
        attempt: 1,
        seq: 100_000,
        result: { hash: audio, ext: '.wav', size: audioSize },
        elapsedMs: 1,
      }),
      qos: 1,
    })
    await waitFor(() => (gateway.store.get(id)?.attempt ?? 1) > 1, {
      what: 'the attempt given up',
    })
    const row = gateway.store.get(id)
    expect(row?.state).not.toBe('done')
    expect(row?.result_hash).toBeNull()
    const notes = gateway.outbox.ofTask(id).map((e) => e.note ?? '')
    expect(notes.some((n) => n.includes('结果文件未能传回网关'))).toBe(true)
  })

  it('holds the execution and stall clocks while a result is being handed over: a slow hand-over is no new GPU run', async () => {
    // Both clocks run out in the middle of the transfer: without the hold the attempt would be
    // given up, the task queued again and the GPU's finished work thrown away.
    const { gateway, gpu, id, resultUrl } = await runningTask('handover-slow', {
      execTimeoutMs: 2_500,
      stallTimeoutMs: 1_500,
    })
    const bytes = media('handover-slow-result', 'video')
    // Eight pieces 500 ms apart: four seconds, past both clocks.
    const reply = await postResult(resultUrl, 'attempt=1&ext=.mp4', {
      bytes,
      length: bytes.length,
      pieces: 8,
      pieceGapMs: 500,
    })
    expect(reply.status).toBe(200)
    const row = gateway.store.get(id)
    expect({ state: row?.state, attempt: row?.attempt }).toEqual({
      state: 'processing',
      attempt: 1,
    })
    // Stored for attempt 1: the clocks stay held until its done arrives.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    expect(gateway.store.get(id)?.attempt).toBe(1)
    expect(gpu.stats.submissions).toHaveLength(1)
  }, 30_000)

  it('serves a result with the content type it was stored with, never as a page', async () => {
    const { gateway, id, resultUrl } = await runningTask('handover-type')
    const page = Buffer.from('<html><script>alert(1)</script></html>')
    const stored = await postResult(resultUrl, 'attempt=1&ext=.html', {
      bytes: page,
      length: page.length,
    })
    expect(stored.status).toBe(200)
    const gpuSide = await testMqttClient(gateway.mqttUrl, 'gateway')
    await publish(gpuSide, {
      topic: 'relay/gpus/gpu-1/events',
      payload: JSON.stringify({
        v: 1,
        kind: 'done',
        taskId: id,
        attempt: 1,
        seq: 100_000,
        result: { hash: md5(page), ext: '.html', size: page.length },
        elapsedMs: 1,
      }),
      qos: 1,
    })
    await waitFor(() => gateway.store.get(id)?.state === 'done', { what: 'done' })
    const res = await fetch(`${gateway.url}/api/heygem/download?task_id=${id}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/octet-stream')
    expect(res.headers.get('x-content-type-options')).toBe('nosniff')
    expect((await download(gateway.url, id)).bytes.equals(page)).toBe(true)
  })
})
