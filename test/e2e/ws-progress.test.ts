/**
 * `/ws/progress/{task_id}` on the gateway, read with a plain WebSocket client: the pushes as
 * run_server sends them (docs/real-services.md §1), its 401 and 404 replies, and the bounds.
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { onTestFinished, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { startBroker } from '../../broker/broker.js'
import { gatewayTestConfig, type GatewayConfig } from '../../gateway/config.js'
import { startGateway, type GatewayHandle } from '../../gateway/gateway.js'
import type { ProgressSocketOptions } from '../../gateway/ws-progress.js'
import { md5Buffer } from '../../lib/hash.js'
import { mp4Bytes, wavBytes } from '../helpers/media.js'
import {
  TEST_CREDENTIALS,
  log,
  startTestBridge,
  startTestGateway,
  startTestGpu,
} from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/** A test gateway whose progress sockets check every 50 ms (1 s in production). */
async function gatewayWith(
  dir: string,
  overrides: Partial<GatewayConfig> = {},
  sockets: ProgressSocketOptions = {},
): Promise<GatewayHandle> {
  const config = gatewayTestConfig(join(dir, 'gateway'), {
    credentials: TEST_CREDENTIALS,
    mqttAllowAnonymous: false,
    ...overrides,
  })
  const gateway = await startGateway(config, {
    log,
    startBroker,
    progressSockets: { intervalMs: 50, ...sockets },
  })
  onTestFinished(() => gateway.close())
  return gateway
}

/** Upload a fresh WAV and MP4 and submit them as the PC app does: the task id. */
async function submitFresh(baseUrl: string, secret?: string): Promise<string> {
  const headers: Record<string, string> = secret ? { Authorization: `Bearer ${secret}` } : {}
  const files = { audio: ['.wav', wavBytes('ws-a')], video: ['.mp4', mp4Bytes('ws-v')] } as const
  for (const [ext, bytes] of Object.values(files)) {
    const form = new FormData()
    form.append('hash', md5Buffer(bytes))
    form.append('ext', ext)
    form.append('file', new Blob([bytes]), `input${ext}`)
    const res = await fetch(`${baseUrl}/api/heygem/upload_file`, {
      method: 'POST',
      body: form,
      headers,
    })
    expect(res.status, await res.clone().text()).toBe(200)
  }
  const res = await fetch(`${baseUrl}/api/heygem/submit`, {
    method: 'POST',
    headers: { ...headers, 'Content-Type': 'application/json' },
    body: JSON.stringify({
      audio_hash: md5Buffer(files.audio[1]),
      audio_ext: '.wav',
      video_hash: md5Buffer(files.video[1]),
      video_ext: '.mp4',
      license_key: '',
    }),
  })
  const body = (await res.json()) as { code: number; data: { task_id: string } }
  expect(body.code).toBe(0)
  return body.data.task_id
}

function wsUrl(gateway: { url: string }, path: string): string {
  return `${gateway.url.replace(/^http/, 'ws')}${path}`
}

interface Push {
  readonly code: number
  readonly msg?: string
  readonly data?: Record<string, unknown>
}

interface Opened {
  readonly socket: WebSocket
  readonly messages: Push[]
  /** Resolves with the close code once the socket has closed. */
  readonly closed: Promise<number>
}

function text(data: WebSocket.RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8')
  return Buffer.concat(Array.isArray(data) ? data : [Buffer.from(data)]).toString('utf8')
}

/** Open a socket and collect what it receives; rejects if the upgrade is refused. */
async function openSocket(url: string, options: WebSocket.ClientOptions = {}): Promise<Opened> {
  const socket = new WebSocket(url, options)
  onTestFinished(() => {
    socket.terminate()
  })
  const messages: Push[] = []
  socket.on('message', (data) => messages.push(JSON.parse(text(data)) as Push))
  const closed = new Promise<number>((resolve) => socket.once('close', resolve))
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve())
    socket.once('error', reject)
  })
  return { socket, messages, closed }
}

/** Everything a socket receives until the server closes it. */
async function readAll(url: string): Promise<{ messages: Push[]; code: number }> {
  const opened = await openSocket(url)
  const code = await opened.closed
  return { messages: opened.messages, code }
}

/** The HTTP status a refused upgrade answers with. */
function refusedWith(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    socket.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0)
      socket.terminate()
    })
    socket.once('open', () => {
      socket.terminate()
      reject(new Error('the upgrade was accepted'))
    })
    socket.once('error', () => undefined)
  })
}

describe('GET /ws/progress/{task_id}', () => {
  it('pushes the progress data on each change, the done one last, then closes', async () => {
    const dir = await tempDir('ws-progress')
    const gateway = await gatewayWith(dir)
    const gpu = await startTestGpu(dir, 1_500)
    const bridge = await startTestBridge(dir, { gateway, gpu })
    await waitFor(() => bridge.isConnected(), { what: 'bridge connected' })
    const taskId = await submitFresh(gateway.url)

    const { messages, code } = await readAll(wsUrl(gateway, `/ws/progress/${taskId}`))

    expect(code).toBe(1000)
    expect(messages.length).toBeGreaterThan(1)
    for (const m of messages) {
      expect(m.code).toBe(0)
      expect(m.data?.task_id).toBe(taskId)
    }
    const keys = messages.map(({ data }) =>
      JSON.stringify([
        data?.status,
        data?.progress,
        data?.current_frame,
        data?.message,
        data?.queue_position,
      ]),
    )
    expect(new Set(keys).size, 'a push only when something the PC shows changed').toBe(keys.length)
    const last = messages.at(-1)?.data
    expect(last?.status).toBe('done')
    expect(last?.progress).toBe(100)
    expect(messages.slice(0, -1).every((m) => m.data?.status !== 'done')).toBe(true)
    expect(messages.some((m) => m.data?.status === 'synthesizing')).toBe(true)

    // The data is exactly what GET /api/heygem/progress returns.
    const polled = (await fetch(`${gateway.url}/api/heygem/progress?task_id=${taskId}`).then((r) =>
      r.json(),
    )) as { data: unknown }
    expect(last).toEqual(polled.data)
  })

  it('with API_SECRET set, answers a missing or wrong token with one 401 and a close', async () => {
    const dir = await tempDir('ws-progress-401')
    const gateway = await gatewayWith(dir, { apiSecret: 'pc-secret' })
    const taskId = await submitFresh(gateway.url, 'pc-secret')

    for (const query of ['', '?token=wrong', '?token=']) {
      const reply = await readAll(wsUrl(gateway, `/ws/progress/${taskId}${query}`))
      expect(reply.messages).toEqual([{ code: 401, msg: '鉴权失败' }])
      expect(reply.code).toBe(1000)
    }

    const served = await openSocket(wsUrl(gateway, `/ws/progress/${taskId}?token=pc-secret`))
    await waitFor(() => served.messages[0], { what: 'first push' })
    expect(served.messages[0]).toMatchObject({ code: 0, data: { task_id: taskId } })
  })

  it('answers an unknown task with one 404 and a close', async () => {
    const dir = await tempDir('ws-progress-404')
    const gateway = await gatewayWith(dir)
    for (const id of [randomUUID(), 'no-such-task']) {
      const reply = await readAll(wsUrl(gateway, `/ws/progress/${id}`))
      expect(reply.messages).toEqual([{ code: 404, msg: `任务 ${id} 不存在` }])
      expect(reply.code).toBe(1000)
    }
  })

  it('refuses upgrades on other paths with 404', async () => {
    const dir = await tempDir('ws-progress-paths')
    const gateway = await startTestGateway(dir)
    for (const path of ['/ws/other', '/ws/progress/', '/ws/progress/a/b', '/api/heygem/progress']) {
      expect(await refusedWith(wsUrl(gateway, path)), path).toBe(404)
    }
  })

  it('refuses a socket over the per-task cap with 503 (the PC app then polls)', async () => {
    const dir = await tempDir('ws-progress-cap')
    const gateway = await gatewayWith(dir, {}, { maxPerTask: 2 })
    const taskId = await submitFresh(gateway.url)
    const url = wsUrl(gateway, `/ws/progress/${taskId}`)
    const first = await openSocket(url)
    const second = await openSocket(url)
    await waitFor(() => first.messages.length > 0 && second.messages.length > 0, {
      what: 'both served',
    })
    expect(await refusedWith(url)).toBe(503)

    first.socket.close()
    await first.closed
    const third = await waitFor(() => openSocket(url), { what: 'a place again' })
    await waitFor(() => third.messages[0], { what: 'third served' })
  })

  it('cuts a peer that stops answering pings', async () => {
    const dir = await tempDir('ws-progress-ping')
    const gateway = await gatewayWith(dir, {}, { pingIntervalMs: 100 })
    const taskId = await submitFresh(gateway.url)
    const silent = await openSocket(wsUrl(gateway, `/ws/progress/${taskId}`), { autoPong: false })
    expect(await silent.closed).toBe(1006)
  })

  it('closes every open progress socket when the gateway closes', async () => {
    const dir = await tempDir('ws-progress-close')
    const gateway = await gatewayWith(dir)
    const taskId = await submitFresh(gateway.url)
    const open = await openSocket(wsUrl(gateway, `/ws/progress/${taskId}`))
    await waitFor(() => open.messages[0], { what: 'first push' })
    await gateway.close()
    expect(await open.closed).toBe(1001)
  })
})
