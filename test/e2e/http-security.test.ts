/** Who sees what over HTTP: bearer secrets, owners by license key, GPU-only file endpoints. */
import { request } from 'node:http'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { requestJson, uploadMultipart } from '../../lib/http-client.js'
import { gpuBearer } from '../../protocol/index.js'
import { media } from '../helpers/pc.js'
import { TEST_CREDENTIALS, TEST_SECRETS, startTestGateway } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'

const API_SECRET = 'pc-api-secret-1'
const ADMIN_TOKEN = 'admin-token-0123456789'
const PC = { authorization: `Bearer ${API_SECRET}` }

async function secureGateway(name: string, extra: Parameters<typeof startTestGateway>[1] = {}) {
  const dir = await tempDir(name)
  return startTestGateway(dir, {
    apiSecret: API_SECRET,
    adminToken: ADMIN_TOKEN,
    credentials: {
      ...TEST_CREDENTIALS,
      gpus: { ...TEST_CREDENTIALS.gpus, 'gpu-2': 'test-gpu-2-secret' },
    },
    ...extra,
  })
}

async function uploadAs(
  url: string,
  bytes: Buffer,
  as: { ext: string; headers: Record<string, string> },
) {
  const { ext, headers } = as
  return uploadMultipart({
    url: `${url}/api/heygem/upload_file`,
    source: Readable.from([bytes]),
    size: bytes.length,
    fields: { hash: md5Buffer(bytes), ext },
    fileField: 'file',
    filename: `x${ext}`,
    headers,
  })
}

async function submitAs(url: string, license: string) {
  const audio = media('a', 'audio')
  const video = media('v', 'video')
  await uploadAs(url, audio, { ext: '.wav', headers: PC })
  await uploadAs(url, video, { ext: '.mp4', headers: PC })
  const reply = await requestJson(`${url}/api/heygem/task/submit`, {
    headers: PC,
    body: {
      audio_hash: md5Buffer(audio),
      audio_ext: '.wav',
      video_hash: md5Buffer(video),
      video_ext: '.mp4',
      license_key: license,
    },
  })
  return { id: (reply.body as { data: { task_id: string } }).data.task_id, audio: md5Buffer(audio) }
}

const get = (url: string, headers: Record<string, string> = {}) => requestJson(url, { headers })

describe('HTTP authentication', () => {
  it('requires the API secret on the user API, keeps health open, and refuses a wrong token', async () => {
    const gw = await secureGateway('auth')
    expect((await get(`${gw.url}/api/heygem/health`)).status).toBe(200)
    const missing = await get(`${gw.url}/api/heygem/queue`)
    expect(missing.status).toBe(401)
    expect(missing.body).toMatchObject({ code: 401, data: { error: 'UNAUTHORIZED' } })
    expect(
      (await get(`${gw.url}/api/heygem/queue`, { authorization: 'Bearer wrong-secret' })).status,
    ).toBe(401)
    expect((await get(`${gw.url}/api/heygem/queue`, PC)).status).toBe(200)
  })

  it('takes the secret with or without `Bearer ` (as run_server), and without an API_SECRET lets an unknown token through as anonymous', async () => {
    const gw = await secureGateway('auth-lenient')
    expect((await get(`${gw.url}/api/heygem/queue`, { authorization: API_SECRET })).status).toBe(
      200,
    )
    expect(
      (await get(`${gw.url}/api/heygem/queue`, { authorization: `bearer  ${API_SECRET} ` })).status,
    ).toBe(200)
    expect(
      (await get(`${gw.url}/api/heygem/queue`, { authorization: 'Bearer LICENSE-1' })).status,
    ).toBe(401)

    const open = await startTestGateway(await tempDir('auth-open'))
    // The H5 app sends its license key as the bearer; run_server without a secret ignores it.
    expect(
      (await get(`${open.url}/api/heygem/queue`, { authorization: 'Bearer LICENSE-1' })).status,
    ).toBe(200)
    expect((await get(`${open.url}/api/heygem/queue`, { authorization: 'LICENSE-1' })).status).toBe(
      200,
    )
    // A GPU credential that does not hold is still refused, loudly.
    const forged = { authorization: `Bearer ${gpuBearer('gpu-1', 'not-its-secret')}` }
    expect((await get(`${open.url}/api/relay/files/${'a'.repeat(32)}`, forged)).status).toBe(401)
  })

  it('keeps GPU credentials to the file endpoints, and PC credentials away from them', async () => {
    const gw = await secureGateway('gpu-scope')
    const gpu1 = { authorization: `Bearer ${gpuBearer('gpu-1', TEST_SECRETS.gpu)}` }
    expect((await get(`${gw.url}/api/heygem/queue`, gpu1)).status).toBe(403)
    const { id } = await submitAs(gw.url, 'K')
    expect((await get(`${gw.url}/api/heygem/task/status?task_id=${id}`, gpu1)).status).toBe(403)
    expect((await get(`${gw.url}/api/relay/files/${'a'.repeat(32)}`, PC)).status).toBe(403)
    const forged = { authorization: `Bearer ${gpuBearer('gpu-1', 'not-its-secret')}` }
    expect((await get(`${gw.url}/api/relay/files/${'a'.repeat(32)}`, forged)).status).toBe(401)
  })

  it('serves a GPU only the inputs of tasks it may run, and takes results only for its own task', async () => {
    const gw = await secureGateway('gpu-files')
    // Queued, so offered to every GPU of its type: either may fetch its inputs to run it.
    const { id, audio } = await submitAs(gw.url, 'K')
    const gpu1 = { authorization: `Bearer ${gpuBearer('gpu-1', TEST_SECRETS.gpu)}` }
    const gpu2 = { authorization: `Bearer ${gpuBearer('gpu-2', 'test-gpu-2-secret')}` }
    expect((await fetch(`${gw.url}/api/relay/files/${audio}`, { headers: gpu1 })).status).toBe(200)
    expect((await fetch(`${gw.url}/api/relay/files/${audio}`, { headers: gpu2 })).status).toBe(200)
    // A file in the pool that is no input of a task that may still run: not for any GPU.
    const loose = media('loose', 'audio')
    await uploadAs(gw.url, loose, { ext: '.wav', headers: PC })
    const looseUrl = `${gw.url}/api/relay/files/${md5Buffer(loose)}`
    expect((await fetch(looseUrl, { headers: PC })).status).toBe(403)
    expect((await fetch(looseUrl, { headers: gpu1 })).status).toBe(404)
    // A result for a task that is not running on the GPU that sends it.
    const forged = await fetch(`${gw.url}/api/relay/tasks/${id}/result?attempt=1`, {
      method: 'POST',
      headers: gpu2,
      body: Buffer.from('not a video'),
    })
    expect(forged.status).toBe(404)
    expect(gw.store.get(id)?.state).toBe('queued')
  })
})

describe('tenant isolation by license key', () => {
  it('shows an owner only their own tasks; another key gets 404; the bare task id still works; the admin sees all', async () => {
    const gw = await secureGateway('isolation')
    const alice = await submitAs(gw.url, 'ALICE')
    const bob = await submitAs(gw.url, 'BOB')
    const as = (key: string) => ({ ...PC, 'x-license-key': key })
    const paths = (id: string) => [
      `/api/heygem/task/status?task_id=${id}`,
      `/api/heygem/progress?task_id=${id}`,
      `/api/heygem/download?task_id=${id}`,
    ]
    for (const path of paths(alice.id)) {
      const foreign = await get(`${gw.url}${path}`, as('BOB'))
      expect(foreign.status).toBe(404)
      expect(foreign.body).toMatchObject({ data: { error: 'TASK_NOT_FOUND' } })
      expect((await get(`${gw.url}${path}&license_key=BOB`, PC)).status).toBe(404)
    }
    expect(
      (await get(`${gw.url}/api/heygem/task/status?task_id=${alice.id}`, as('ALICE'))).status,
    ).toBe(200)
    // The unchanged PC app: secret + task id only.
    expect((await get(`${gw.url}/api/heygem/progress?task_id=${alice.id}`, PC)).status).toBe(200)
    const cancel = await requestJson(`${gw.url}/api/heygem/task/cancel`, {
      headers: as('BOB'),
      body: { task_id: alice.id },
    })
    expect(cancel.status).toBe(404)
    expect(gw.store.get(alice.id)?.state).toBe('queued')

    const history = await get(`${gw.url}/api/heygem/task/history`, as('BOB'))
    const ids = (history.body as { data: { tasks: { task_id: string }[] } }).data.tasks.map(
      (t) => t.task_id,
    )
    expect(ids).toEqual([bob.id])
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` }
    expect(
      (await get(`${gw.url}/api/heygem/task/status?task_id=${alice.id}&license_key=BOB`, admin))
        .status,
    ).toBe(200)
    const all = await get(`${gw.url}/api/heygem/task/history`, admin)
    expect((all.body as { data: { tasks: unknown[] } }).data.tasks).toHaveLength(2)
  })

  it('issues task ids with 122 random bits (UUID v4)', async () => {
    const gw = await secureGateway('ids')
    const { id } = await submitAs(gw.url, 'K')
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })
})

describe('limits', () => {
  it('rate-limits submits per client address and credential: a new license_key each time does not get past it', async () => {
    const gw = await secureGateway('rate', {
      rateLimits: { submitsPerMinute: 2, uploadsPerMinute: 100 },
    })
    await submitAs(gw.url, 'BUSY')
    await submitAs(gw.url, 'ANOTHER-KEY')
    const audio = media('a', 'audio')
    await uploadAs(gw.url, audio, { ext: '.wav', headers: PC })
    const body = JSON.stringify({
      audio_hash: md5Buffer(audio),
      audio_ext: '.wav',
      video_hash: md5Buffer(audio),
      video_ext: '.mp4',
      license_key: 'YET-ANOTHER-KEY',
    })
    const third = await postFrom('127.0.0.1', `${gw.url}/api/heygem/task/submit`, body)
    expect(third.status).toBe(429)
    expect(Number(third.retryAfter)).toBeGreaterThan(0)
    // Another address is not held up.
    expect((await postFrom('127.0.0.2', `${gw.url}/api/heygem/task/submit`, body)).status).toBe(200)
  })

  it('stops an upload over the size limit while streaming, and leaves no file', async () => {
    const gw = await secureGateway('upload-limit', { uploadMaxBytes: 10_000 })
    const big = Buffer.alloc(50_000, 7)
    const reply = await uploadAs(gw.url, big, { ext: '.wav', headers: PC })
    expect(reply.status).toBe(413)
    expect(reply.body).toMatchObject({ data: { error: 'FILE_TOO_LARGE' } })
    const check = await requestJson(`${gw.url}/api/heygem/check_files`, {
      headers: PC,
      body: { files: [{ hash: md5Buffer(big), ext: '.wav' }] },
    })
    expect(check.body).toMatchObject({ data: { [md5Buffer(big)]: false } })
  })
})

describe('an endless upload', () => {
  it('is cut off soon after the size limit, with 413, not read to its end', async () => {
    const gw = await secureGateway('endless-upload', { uploadMaxBytes: 10_000 })
    const { request } = await import('node:http')
    let sent = 0
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.url}/api/heygem/upload_file`, {
        method: 'POST',
        headers: {
          ...PC,
          'content-type': 'multipart/form-data; boundary=b',
          'transfer-encoding': 'chunked',
        },
      })
      req.on('response', (res) => {
        res.resume()
        resolve(res.statusCode ?? 0)
        req.destroy()
      })
      req.on('error', () => {
        /* the server closes the connection after answering */
      })
      req.write('--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n')
      const chunk = Buffer.alloc(64 * 1024)
      const pump = (): void => {
        while (sent < 200 * 1024 * 1024) {
          sent += chunk.length
          if (!req.write(chunk)) {
            req.once('drain', pump)
            return
          }
        }
        reject(new Error('the server read 200 MB without answering'))
      }
      pump()
    })
    expect(status).toBe(413)
    expect(sent).toBeLessThan(20 * 1024 * 1024)
  })
})

/** POST JSON as the PC, from a chosen loopback source address. */
function postFrom(
  localAddress: string,
  url: string,
  body: string,
): Promise<{ status: number; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', localAddress, headers: { ...PC, 'content-type': 'application/json' } },
      (res) => {
        res.resume()
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}
