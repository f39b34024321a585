/**
 * Nothing of a body is read before the caller is authenticated and its declared size allowed
 * (docs/design.md §3.9, point 1): 413 before reading, `100 Continue` only for an authenticated caller, refused
 * credentials answered with the connection closed, and upgraded WebSockets counted in the
 * per-address connection cap.
 */
import { once } from 'node:events'
import { describe, expect, it, onTestFinished } from 'vitest'
import WebSocket from 'ws'
import { md5Buffer } from '../../lib/hash.js'
import { requestJson } from '../../lib/http-client.js'
import { hostile, requestFrom } from '../helpers/hostile-http.js'
import { clientIp, connectFrom, loopbackAddressesMissing } from '../helpers/loopback-addresses.js'
import { mp4Bytes, wavBytes } from '../helpers/media.js'
import { startTestGateway } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const missing = await loopbackAddressesMissing()

const API_SECRET = 'body-gate-secret'
const AUTH = `Authorization: Bearer ${API_SECRET}\r\n`
const PC = { authorization: `Bearer ${API_SECRET}` }

async function gateway(name: string, extra: Parameters<typeof startTestGateway>[1] = {}) {
  return startTestGateway(await tempDir(name), {
    apiSecret: API_SECRET,
    uploadMaxBytes: 10_000,
    idleTimeoutMs: 60_000, // nothing below is closed for idleness
    ...extra,
  })
}

const post = (path: string, headers: string, length: number): string =>
  `POST ${path} HTTP/1.1\r\nHost: relay\r\n${headers}Content-Length: ${String(length)}\r\n\r\n`

describe('the body gate', () => {
  it('refuses a declared length over the limit with 413 before a byte of the body is sent, and closes', async () => {
    const gw = await gateway('gate-413')
    const json = await hostile(
      gw.url,
      '127.0.0.1',
      post('/api/heygem/task/submit', `${AUTH}Content-Type: application/json\r\n`, 2_000_000),
    )
    const upload = await hostile(
      gw.url,
      '127.0.0.1',
      post(
        '/api/heygem/upload_file',
        `${AUTH}Content-Type: multipart/form-data; boundary=b\r\n`,
        5e6,
      ),
    )
    const [jsonReply, uploadReply] = await Promise.all([json.closed, upload.closed])
    expect(jsonReply).toMatch(/^HTTP\/1\.1 413 [^]*\r\nconnection: close\r\n[^]*"BODY_TOO_LARGE"/i)
    expect(uploadReply).toMatch(
      /^HTTP\/1\.1 413 [^]*\r\nconnection: close\r\n[^]*"FILE_TOO_LARGE"/i,
    )
  })

  it('says 100 Continue only to an authenticated caller, and refuses the others unread', async () => {
    const gw = await gateway('gate-continue')
    const body = JSON.stringify({ files: [{ hash: 'a'.repeat(32), ext: '.wav' }] })
    const head = (auth: string) =>
      post(
        '/api/heygem/check_files',
        `${auth}Content-Type: application/json\r\nExpect: 100-continue\r\n`,
        body.length,
      )
    for (const auth of ['Authorization: Bearer wrong-secret\r\n', '']) {
      const refused = await hostile(gw.url, '127.0.0.1', head(auth))
      const reply = await refused.closed
      expect(reply).toMatch(/^HTTP\/1\.1 401 [^]*\r\nconnection: close\r\n/i)
      expect(reply).not.toContain('100 Continue')
    }

    const socket = await connectFrom(gw.url, '127.0.0.1')
    onTestFinished(() => {
      socket.destroy()
    })
    let got = ''
    socket.on('data', (chunk: Buffer) => (got += chunk.toString()))
    socket.write(head(AUTH))
    await waitFor(() => got.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), { what: '100 Continue' })
    socket.write(body)
    await waitFor(() => got.includes('"code":0'), { what: 'the check_files reply' })
    expect(got).toMatch(/\r\n\r\nHTTP\/1\.1 200 /)
  })

  it('closes the connection after refused credentials whatever the body, and after any reply that leaves a body unread', async () => {
    const gw = await gateway('gate-close')
    const body = '{"files":[]}'
    const wrong = await hostile(
      gw.url,
      '127.0.0.1',
      post('/api/heygem/check_files', 'Authorization: Bearer wrong-secret\r\n', body.length) + body,
    )
    expect(await wrong.closed).toMatch(/^HTTP\/1\.1 401 [^]*\r\nconnection: close\r\n/i)
    // So does a request without any body.
    const bare = await hostile(
      gw.url,
      '127.0.0.1',
      'GET /api/heygem/queue HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer wrong-secret\r\n\r\n',
    )
    expect(await bare.closed).toMatch(/^HTTP\/1\.1 401 [^]*\r\nconnection: close\r\n/i)
    // A body on the open health route is not read either.
    const health = await hostile(gw.url, '127.0.0.1', {
      head: 'GET /api/heygem/health HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000000\r\n\r\n',
      bodyBytes: 500_000,
    })
    expect(await health.closed).toMatch(/^HTTP\/1\.1 200 [^]*\r\nconnection: close\r\n/i)
    // An honest request keeps its connection: a second one is answered on it.
    const socket = await connectFrom(gw.url, '127.0.0.1')
    onTestFinished(() => {
      socket.destroy()
    })
    let got = ''
    socket.on('data', (chunk: Buffer) => (got += chunk.toString()))
    const honest = post('/api/heygem/check_files', AUTH, body.length) + body
    socket.write(honest)
    await waitFor(() => got.includes('"code":0'), { what: 'the first reply' })
    expect(got).not.toMatch(/\r\nconnection: close\r\n/i)
    socket.write(honest)
    await waitFor(() => got.split('"code":0').length === 3, { what: 'the second reply' })
  })
})

/** Upload a WAV and an MP4 and submit them: a queued task's id (no GPU is running). */
async function queuedTask(url: string): Promise<string> {
  const files = {
    audio: ['.wav', wavBytes('gate-a')],
    video: ['.mp4', mp4Bytes('gate-v')],
  } as const
  for (const [ext, bytes] of Object.values(files)) {
    const form = new FormData()
    form.append('hash', md5Buffer(bytes))
    form.append('ext', ext)
    form.append('file', new Blob([bytes]), `input${ext}`)
    const res = await fetch(`${url}/api/heygem/upload_file`, {
      method: 'POST',
      body: form,
      headers: PC,
    })
    expect(res.status).toBe(200)
  }
  const reply = await requestJson(`${url}/api/heygem/submit`, {
    headers: PC,
    body: {
      audio_hash: md5Buffer(files.audio[1]),
      audio_ext: '.wav',
      video_hash: md5Buffer(files.video[1]),
      video_ext: '.mp4',
    },
  })
  return (reply.body as { data: { task_id: string } }).data.task_id
}

describe.skipIf(missing !== null)('the per-address connection cap on the gateway', () => {
  it('counts upgraded progress WebSockets: one over the cap is closed, other addresses are not held up', async () => {
    const gw = await gateway('cap-ws', { maxConnectionsPerIp: 3, uploadMaxBytes: 1_000_000 })
    const taskId = await queuedTask(gw.url)
    const wsUrl = `${gw.url.replace(/^http/, 'ws')}/ws/progress/${taskId}?token=${API_SECRET}`
    const open = async (ip: string): Promise<WebSocket> => {
      const ws = new WebSocket(wsUrl, { localAddress: ip })
      onTestFinished(() => {
        ws.terminate()
      })
      await once(ws, 'message') // the first push: subscribed, and the socket stays open
      return ws
    }
    const ip = clientIp(60)
    const held = [await open(ip), await open(ip), await open(ip)]
    const over = new WebSocket(wsUrl, { localAddress: ip })
    over.on('error', () => undefined) // socket hang up
    const code = await new Promise<number>((resolve) => over.once('close', resolve))
    expect(code).toBe(1006) // the connection was closed, no handshake
    await expect(requestFrom(ip, `${gw.url}/api/heygem/health`)).rejects.toThrow()
    // Another address is served, and a closed socket frees its place.
    expect((await requestFrom(clientIp(61), `${gw.url}/api/heygem/health`)).status).toBe(200)
    held[0]?.close()
    await waitFor(
      () => requestFrom(ip, `${gw.url}/api/heygem/health`).then((r) => r.status === 200),
      { what: 'a place freed by the closed socket' },
    )
  })
})
