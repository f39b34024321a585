/**
 * The user's unchanged PC app (`run_heygem_online`, modelled call for call in helpers/pc-app.ts)
 * pointed at the gateway, with the real bridge and the fake run_server behind it: what it calls,
 * what it shows, and what it downloads.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { fakeResultBytes } from '../fakes/result-bytes.js'
import { aviBytes, mp4Bytes, wavBytes } from '../helpers/media.js'
import { PcAppError, runHeygemOnline, type PcAppOptions } from '../helpers/pc-app.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/** The app's 3 s health and 2 s polling intervals, shortened; everything else as the app does. */
const FAST = { healthIntervalMs: 50, pollIntervalMs: 50 } as const
/** A job long enough for the gateway's 1 s WebSocket checks to see it synthesizing. */
const JOB_MS = 3_000

function pcInputs(label: string): Pick<PcAppOptions, 'video' | 'audio'> {
  return {
    // The app accepts any video the user picks; the name is a Windows path, as on the PC.
    video: { name: `C:\\Users\\pc\\素材\\${label}.avi`, bytes: aviBytes(`${label}-video`) },
    audio: { name: `C:\\Users\\pc\\${label}.wav`, bytes: wavBytes(`${label}-audio`) },
  }
}

function rendered(inputs: Pick<PcAppOptions, 'video' | 'audio'>): Buffer {
  return fakeResultBytes(md5Buffer(inputs.audio.bytes), md5Buffer(inputs.video.bytes), 32 * 1024)
}

/** The app's calls after its health loop when it uploads both files and gets progress by WebSocket. */
function callsAfterHealth(taskId: string): string[] {
  return [
    'POST /api/heygem/check_files',
    'POST /api/heygem/upload_file',
    'POST /api/heygem/upload_file',
    'POST /api/heygem/submit',
    `WS /ws/progress/${taskId}`,
    'GET /api/heygem/download',
  ]
}

/** Run the app expecting it to stop: what the user is left with. */
async function failedRun(options: PcAppOptions): Promise<PcAppError> {
  const failed = await runHeygemOnline(options).catch((err: unknown) => err)
  expect(failed).toBeInstanceOf(PcAppError)
  return failed as PcAppError
}

/** The gateway behind a reverse proxy that passes HTTP but answers WebSocket upgrades with 404. */
async function proxyWithoutWebSockets(target: string): Promise<string> {
  const server: Server = createServer((req, res) => {
    const upstream = request(
      new URL(req.url ?? '/', target),
      { method: req.method, headers: req.headers },
      (reply: IncomingMessage) => {
        res.writeHead(reply.statusCode ?? 502, reply.statusMessage, reply.headers)
        reply.pipe(res)
      },
    )
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  server.on('upgrade', (_req, socket) => {
    socket.end('HTTP/1.1 404 NOT FOUND\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('the PC app pointed at the gateway', () => {
  it('makes its exact calls with license_key "" and an .avi video, and downloads the GPU result of attempt 1', async () => {
    const dir = await tempDir('pc-app')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, JOB_MS)
    const bridge = await startTestBridge(dir, { gateway, gpu })
    await waitFor(() => bridge.isConnected(), { what: 'bridge connected' })
    const inputs = pcInputs('first')

    const result = await runHeygemOnline({ serverUrl: gateway.url, ...inputs, ...FAST })

    expect(result.calls).toEqual(['GET /api/heygem/health', ...callsAfterHealth(result.taskId)])
    expect(result.via).toBe('ws')
    expect(result.video.equals(rendered(inputs))).toBe(true)
    const row = gateway.store.get(result.taskId)
    expect(row?.state).toBe('done')
    expect(row?.attempt).toBe(1)
    expect(row?.owner, 'license_key "" is a task without an owner').toBeNull()
    expect(result.displayed.some((t) => t.includes('合成中'))).toBe(true)
    expect(result.displayed.at(-1)).toBe('✅ 完成')

    // The same inputs again: both files are on the gateway, so nothing is uploaded.
    const again = await runHeygemOnline({ serverUrl: gateway.url, ...inputs, ...FAST })
    expect(again.calls.filter((c) => c.includes('upload_file'))).toEqual([])
    expect(again.video.equals(rendered(inputs))).toBe(true)
  })

  it('while the GPU is off, shows that the task is queued for the GPU with its place and an estimate; then the real progress, done on attempt 1', async () => {
    const dir = await tempDir('pc-app-off-on')
    const gateway = await startTestGateway(dir, { bootEstimateS: 150 })
    const gpu = await startTestGpu(dir, JOB_MS)
    const inputs = pcInputs('offline')
    const shown: string[] = []
    const running = runHeygemOnline({
      serverUrl: gateway.url,
      ...inputs,
      ...FAST,
      onDisplay: (text) => shown.push(text),
    })
    running.catch(() => undefined) // awaited below; a failure must not go unhandled meanwhile

    const waiting = await waitFor(() => shown.find((t) => t.includes('预计')), {
      what: 'the waiting text on the PC',
    })
    expect(waiting).toContain('GPU')
    expect(waiting).toContain('排队')
    expect(waiting).toContain('第1位')
    expect(waiting).toMatch(/预计约 [\d.]+ (秒|分钟|小时)后开始/)

    await startTestBridge(dir, { gateway, gpu })
    const result = await running
    const realWords = result.displayed.slice(result.displayed.indexOf(waiting))
    expect(realWords.some((t) => t.includes('合成中'))).toBe(true)
    expect(result.via).toBe('ws')
    expect(result.video.equals(rendered(inputs))).toBe(true)
    expect(gateway.store.get(result.taskId)?.attempt).toBe(1)
  })

  it('shows the engine reason of a failed job, in Chinese, with no URL or English', async () => {
    const dir = await tempDir('pc-app-fail')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir)
    await startTestBridge(dir, { gateway, gpu })
    gpu.failNext('未检测到人脸')

    const err = await failedRun({ serverUrl: gateway.url, ...pcInputs('noface'), ...FAST })

    expect(err.message).toBe('服务器合成失败: 未检测到人脸')
    expect(err.shown).toBe(true)
    expect(err.via).toBe('ws')
  })

  it('falls back to polling when WebSockets do not get through, and when the app has no websockets package', async () => {
    const dir = await tempDir('pc-app-poll')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir)
    await startTestBridge(dir, { gateway, gpu })
    const proxied = await proxyWithoutWebSockets(gateway.url)

    const inputs = pcInputs('proxied')
    const viaProxy = await runHeygemOnline({ serverUrl: proxied, ...inputs, ...FAST })
    expect(viaProxy.via).toBe('poll')
    const progressAt = viaProxy.calls.indexOf(`WS /ws/progress/${viaProxy.taskId}`)
    expect(progressAt).toBeGreaterThan(0)
    expect(viaProxy.calls[progressAt + 1]).toBe('GET /api/heygem/progress')
    expect(viaProxy.calls.at(-1)).toBe('GET /api/heygem/download')
    expect(viaProxy.video.equals(rendered(inputs))).toBe(true)

    const plain = pcInputs('plain')
    const noPackage = await runHeygemOnline({
      serverUrl: gateway.url,
      ...plain,
      ...FAST,
      websockets: false,
    })
    expect(noPackage.via).toBe('poll')
    expect(noPackage.calls.some((c) => c.startsWith('WS '))).toBe(false)
    expect(noPackage.video.equals(rendered(plain))).toBe(true)
  })

  it("with API_SECRET: served with the secret (the WebSocket by ?token=), and without it sees only requests' 401 text", async () => {
    const dir = await tempDir('pc-app-secret')
    const gateway = await startTestGateway(dir, { apiSecret: 'pc-secret' })
    const gpu = await startTestGpu(dir)
    await startTestBridge(dir, { gateway, gpu })

    const inputs = pcInputs('secret')
    const served = await runHeygemOnline({
      serverUrl: gateway.url,
      apiSecret: 'pc-secret',
      ...inputs,
      ...FAST,
    })
    expect(served.via).toBe('ws')
    expect(served.video.equals(rendered(inputs))).toBe(true)

    // Health is open; check_files fails quietly (the app then uploads everything); the upload's
    // 401 reaches the user as requests words it.
    const refused = await failedRun({ serverUrl: gateway.url, ...pcInputs('nosecret'), ...FAST })
    expect(refused.message).toBe(
      `上传video到服务器失败: 401 Client Error: Unauthorized for url: ${gateway.url}/api/heygem/upload_file`,
    )
  })

  it('the model against run_server itself (the reference): waits out its closed port while it loads, then the same calls', async () => {
    const dir = await tempDir('pc-app-reference')
    const gpu = await startTestGpu(dir, JOB_MS, { loadMs: 300, apiSecret: 'gpu-secret' })
    const inputs = pcInputs('reference')
    const result = await runHeygemOnline({
      serverUrl: gpu.url,
      apiSecret: 'gpu-secret',
      ...inputs,
      ...FAST,
    })
    const health = result.calls.filter((c) => c === 'GET /api/heygem/health')
    expect(health.length, 'connection refused while loading').toBeGreaterThan(1)
    expect(result.calls.slice(health.length)).toEqual(callsAfterHealth(result.taskId))
    expect(result.displayed[0]).toMatch(/^环境检测\.\.\. \d+%$/)
    expect(result.displayed.some((t) => t.includes('合成中'))).toBe(true)
    expect(result.via).toBe('ws')
    expect(result.video.equals(rendered(inputs))).toBe(true)
  })

  it('shows a refused upload only as requests words it (raise_for_status before the body)', async () => {
    const dir = await tempDir('pc-app-refused')
    const gateway = await startTestGateway(dir)
    const refused = await failedRun({
      serverUrl: gateway.url,
      video: { name: 'notes.avi', bytes: Buffer.from('not a video at all '.repeat(100)) },
      audio: { name: 'voice.wav', bytes: wavBytes('refused-audio') },
      ...FAST,
    })
    expect(refused.message).toMatch(
      /^上传video到服务器失败: 4\d\d Client Error: [A-Za-z ]+ for url: http:\/\/127\.0\.0\.1:\d+\/api\/heygem\/upload_file$/,
    )
    expect(refused.calls.at(-1)).toBe('POST /api/heygem/upload_file')
  })

  it('gets mp4 results too, the server URL completed as the app does', async () => {
    const dir = await tempDir('pc-app-mp4')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir)
    await startTestBridge(dir, { gateway, gpu })
    const inputs = {
      video: { name: 'avatar.mp4', bytes: mp4Bytes('mp4-video') },
      audio: { name: 'voice.wav', bytes: wavBytes('mp4-audio') },
    }
    // HEYGEM_SERVER_URL without the scheme and with a trailing slash.
    const result = await runHeygemOnline({
      serverUrl: `${gateway.url.replace('http://', '')}/`,
      ...inputs,
      ...FAST,
    })
    expect(result.video.equals(rendered(inputs))).toBe(true)
  })
})
