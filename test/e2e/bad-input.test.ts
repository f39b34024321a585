/**
 * Bad input over every endpoint and topic, against a gateway in its own process: each gets the
 * right status and code, no process crashes, and no task row, transition, pooled file or file on
 * disk changes. Prints one line: `N bad inputs tried, 0 crashes, 0 state changes`.
 */
import { createHash, randomUUID } from 'node:crypto'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import Database from 'better-sqlite3'
import mqtt, { type MqttClient } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { requestJson, uploadMultipart } from '../../lib/http-client.js'
import { endClient } from '../../lib/mqtt.js'
import { bridgeClientId, gpuBearer } from '../../protocol/index.js'
import { freePort, startChildGateway } from '../helpers/child-process.js'
import { media, postForm } from '../helpers/pc.js'
import { TEST_SECRETS } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const API_SECRET = 'pc-api-secret-1'
const PC = { authorization: `Bearer ${API_SECRET}` }
const GPU1 = { authorization: `Bearer ${gpuBearer('gpu-1', TEST_SECRETS.gpu)}` }
const GPU2_SECRET = 'test-gpu-2-secret'

interface HttpCase {
  readonly name: string
  readonly method?: 'GET' | 'POST'
  readonly path: string
  readonly headers?: Record<string, string>
  readonly json?: unknown
  readonly raw?: { readonly body: Buffer | string; readonly type: string }
  readonly multipart?: {
    readonly fields: Record<string, string>
    readonly filename: string
    readonly bytes: Buffer
  }
  /** Several files in one form (legacy upload): field → file. */
  readonly form?: {
    readonly fields: Record<string, string>
    readonly files: Record<string, { readonly bytes: Buffer; readonly filename: string }>
  }
  readonly status: number
  readonly code: string
}

async function send(base: string, c: HttpCase): Promise<{ status: number; body: unknown }> {
  if (c.form) return postForm(`${base}${c.path}`, c.form.fields, c.form.files, c.headers ?? PC)
  if (c.multipart) {
    return uploadMultipart({
      url: `${base}${c.path}`,
      source: Readable.from([c.multipart.bytes]),
      size: c.multipart.bytes.length,
      fields: c.multipart.fields,
      fileField: 'file',
      filename: c.multipart.filename,
      headers: c.headers ?? PC,
    })
  }
  const headers: Record<string, string> = { ...(c.headers ?? PC) }
  let body: string | Buffer | undefined
  if (c.raw) {
    headers['content-type'] = c.raw.type
    body = c.raw.body
  } else if (c.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(c.json)
  }
  const res = await fetch(`${base}${c.path}`, {
    method: c.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
  })
  const text = await res.text()
  try {
    return { status: res.status, body: JSON.parse(text) as unknown }
  } catch {
    return { status: res.status, body: text }
  }
}

/** Every task row, transition and pooled file, and every file on disk, as one hash. */
async function snapshot(dataDir: string): Promise<string> {
  const db = new Database(join(dataDir, 'gateway.sqlite'), { readonly: true })
  try {
    const rows = ['tasks', 'task_transitions', 'files'].map((table) =>
      JSON.stringify(db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all()),
    )
    const files = (await readdir(join(dataDir, 'files'), { recursive: true })).sort()
    return createHash('sha256').update(rows.join('\n')).update(files.join('\n')).digest('hex')
  } finally {
    db.close()
  }
}

function publishedAttempt(dataDir: string, taskId: string): number | null {
  const db = new Database(join(dataDir, 'gateway.sqlite'), { readonly: true })
  try {
    const row = db
      .prepare<[string], { published_attempt: number }>(
        'SELECT published_attempt FROM tasks WHERE id = ?',
      )
      .get(taskId)
    return row?.published_attempt ?? null
  } finally {
    db.close()
  }
}

function rogue(url: string, gpuId: string, secret: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    clientId: bridgeClientId(gpuId),
    username: gpuId,
    password: secret,
    reconnectPeriod: 0,
  })
}

describe('bad input', () => {
  it('gets a clear answer everywhere, and crashes nothing and changes nothing', async () => {
    const dir = await tempDir('bad-input')
    const dataDir = join(dir, 'gateway')
    const gw = await startChildGateway(
      dataDir,
      { http: await freePort(), mqtt: await freePort() },
      {
        API_SECRET,
        GPU_SECRETS: `gpu-1:${TEST_SECRETS.gpu},gpu-2:${GPU2_SECRET}`,
        UPLOAD_MAX_BYTES: '100000',
        JSON_BODY_LIMIT: '64kb',
        MQTT_MAX_PAYLOAD_BYTES: '65536',
      },
    )
    const base = gw.url
    // A little state to protect: two inputs and one queued task (no GPU is connected).
    const audio = media('audio', 'audio')
    const video = media('video', 'video')
    for (const [bytes, ext] of [
      [audio, '.wav'],
      [video, '.mp4'],
    ] as const) {
      const r = await uploadMultipart({
        url: `${base}/api/heygem/upload_file`,
        source: Readable.from([bytes]),
        size: bytes.length,
        fields: { hash: md5Buffer(bytes), ext },
        fileField: 'file',
        filename: `in${ext}`,
        headers: PC,
      })
      expect(r.status).toBe(200)
    }
    const submit = {
      audio_hash: md5Buffer(audio),
      audio_ext: '.wav',
      video_hash: md5Buffer(video),
      video_ext: '.mp4',
      license_key: 'OWNER',
    }
    const created = await requestJson(`${base}/api/heygem/task/submit`, {
      headers: PC,
      body: submit,
    })
    const taskId = (created.body as { data: { task_id: string } }).data.task_id
    // The submit's own last write (marking the task published, on the broker's PUBACK) lands
    // after its reply: wait for it, so the snapshots compare only what the bad input did.
    await waitFor(() => publishedAttempt(dataDir, taskId) === 1, { what: 'the task published' })
    const unknown = randomUUID()

    const cases: HttpCase[] = [
      {
        name: 'submit without fields',
        path: '/api/heygem/task/submit',
        json: {},
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'submit with a wrong type',
        path: '/api/heygem/task/submit',
        json: { ...submit, audio_hash: 123 },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'submit a hash that is not md5',
        path: '/api/heygem/task/submit',
        json: { ...submit, video_hash: 'abc' },
        status: 404,
        code: 'FILE_NOT_FOUND',
      },
      {
        name: 'submit empty hashes',
        path: '/api/heygem/task/submit',
        json: { ...submit, audio_hash: '' },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'submit an over-long hash',
        path: '/api/heygem/task/submit',
        json: { ...submit, audio_hash: 'a'.repeat(201) },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'submit an over-long license key',
        path: '/api/heygem/task/submit',
        json: { ...submit, license_key: 'k'.repeat(201) },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'submit an ext with a path',
        path: '/api/heygem/task/submit',
        json: { ...submit, audio_ext: '../../x' },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'submit files never uploaded',
        path: '/api/heygem/task/submit',
        json: { ...submit, audio_hash: 'f'.repeat(32) },
        status: 404,
        code: 'FILE_NOT_FOUND',
      },
      {
        name: 'submit a body over the limit',
        path: '/api/heygem/task/submit',
        json: { ...submit, padding: 'x'.repeat(100_000) },
        status: 413,
        code: 'BODY_TOO_LARGE',
      },
      {
        name: 'submit broken JSON',
        path: '/api/heygem/task/submit',
        raw: { body: '{"audio_hash":', type: 'application/json' },
        status: 400,
        code: 'BAD_JSON',
      },
      {
        name: 'submit without the API secret',
        path: '/api/heygem/task/submit',
        headers: {},
        json: submit,
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'submit with a wrong secret',
        path: '/api/heygem/task/submit',
        headers: { authorization: 'Bearer nope-nope-nope' },
        json: submit,
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'submit with a GPU credential',
        path: '/api/heygem/task/submit',
        headers: GPU1,
        json: submit,
        status: 403,
        code: 'FORBIDDEN',
      },
      {
        name: 'submit an over-long Idempotency-Key',
        path: '/api/heygem/task/submit',
        headers: { ...PC, 'idempotency-key': 'k'.repeat(300) },
        json: submit,
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'GPU-API submit without fields',
        path: '/api/heygem/submit',
        json: { audio_hash: 1 },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'GPU-API submit with empty hashes',
        path: '/api/heygem/submit',
        json: { audio_hash: '', video_hash: '', sender_fd: 3 },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'GPU-API submit an ext with a path',
        path: '/api/heygem/submit',
        json: { ...submit, video_ext: '../x' },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'GPU-API submit a tmp_ hash never uploaded',
        path: '/api/heygem/submit',
        json: { ...submit, video_hash: 'tmp_1700000000_ab' },
        status: 404,
        code: 'FILE_NOT_FOUND',
      },
      {
        name: 'status of an unknown task',
        path: `/api/heygem/task/status?task_id=${unknown}`,
        status: 404,
        code: 'TASK_NOT_FOUND',
      },
      {
        name: 'status with a malformed id',
        path: '/api/heygem/task/status?task_id=../../etc/passwd',
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'status with two ids',
        path: `/api/heygem/task/status?task_id=${taskId}&task_id=${unknown}`,
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'status of another owner',
        path: `/api/heygem/task/status?task_id=${taskId}`,
        headers: { ...PC, 'x-license-key': 'SOMEONE-ELSE' },
        status: 404,
        code: 'TASK_NOT_FOUND',
      },
      {
        name: 'progress without an id',
        path: '/api/heygem/progress',
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'download of a queued task',
        path: `/api/heygem/download?task_id=${taskId}`,
        status: 400,
        code: 'TASK_NOT_DONE',
      },
      {
        name: 'download of an unknown task',
        path: `/api/heygem/download?task_id=${unknown}`,
        status: 404,
        code: 'TASK_NOT_FOUND',
      },
      {
        name: 'retry of a queued task',
        path: '/api/heygem/task/retry',
        json: { task_id: taskId },
        status: 409,
        code: 'TASK_NOT_RETRYABLE',
      },
      {
        name: 'cancel of an unknown task',
        path: '/api/heygem/task/cancel',
        json: { task_id: unknown },
        status: 404,
        code: 'TASK_NOT_FOUND',
      },
      {
        name: "cancel of another owner's task",
        path: '/api/heygem/task/cancel',
        headers: { ...PC, 'x-license-key': 'SOMEONE-ELSE' },
        json: { task_id: taskId },
        status: 404,
        code: 'TASK_NOT_FOUND',
      },
      {
        name: 'cancel without an id',
        path: '/api/heygem/task/cancel',
        json: {},
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'history without a license key',
        path: '/api/heygem/task/history',
        status: 400,
        code: 'LICENSE_REQUIRED',
      },
      {
        name: 'history with limit 0',
        path: '/api/heygem/task/history?license_key=OWNER&limit=0',
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'check_files with an over-long hash',
        path: '/api/heygem/check_files',
        json: { files: [{ hash: 'z'.repeat(201), ext: '.wav' }] },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'check_files with files that are not a list',
        path: '/api/heygem/check_files',
        json: { files: 'a.wav' },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'check_files with too many files',
        path: '/api/heygem/check_files',
        json: { files: Array.from({ length: 101 }, () => ({ hash: 'a'.repeat(32), ext: '.wav' })) },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'upload that is not multipart',
        path: '/api/heygem/upload_file',
        raw: { body: 'hello', type: 'text/plain' },
        status: 400,
        code: 'BAD_UPLOAD',
      },
      {
        name: 'upload without a file',
        path: '/api/heygem/upload_file',
        raw: {
          body: '--b\r\nContent-Disposition: form-data; name="hash"\r\n\r\nx\r\n--b--\r\n',
          type: 'multipart/form-data; boundary=b',
        },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'upload without a hash',
        path: '/api/heygem/upload_file',
        multipart: { fields: { ext: '.wav' }, filename: 'a.wav', bytes: media('u1', 'audio') },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'upload with an over-long hash',
        path: '/api/heygem/upload_file',
        multipart: {
          fields: { hash: 'h'.repeat(201), ext: '.wav' },
          filename: 'a.wav',
          bytes: media('u1b', 'audio'),
        },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'upload with a path in its name',
        path: '/api/heygem/upload_file',
        multipart: {
          fields: { hash: 'tmp_1', ext: '.wav' },
          filename: '../../etc/passwd.wav',
          bytes: media('u2', 'audio'),
        },
        status: 400,
        code: 'BAD_FILENAME',
      },
      {
        name: 'upload with an ext that is no extension',
        path: '/api/heygem/upload_file',
        multipart: {
          fields: { hash: 'tmp_1', ext: '.w a v' },
          filename: 'a.wav',
          bytes: media('u2b', 'audio'),
        },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'upload of an .exe (by its content)',
        path: '/api/heygem/upload_file',
        multipart: {
          fields: { hash: 'tmp_2', ext: '.mp4' },
          filename: 'x.mp4',
          bytes: Buffer.concat([Buffer.from('MZ'), Buffer.alloc(8000, 0x90)]),
        },
        status: 400,
        code: 'NOT_MEDIA',
      },
      {
        name: 'upload of text named .wav',
        path: '/api/heygem/upload_file',
        multipart: {
          fields: { hash: 'tmp_3', ext: '.wav' },
          filename: 'a.wav',
          bytes: Buffer.from('not a voice at all '.repeat(500)),
        },
        status: 400,
        code: 'NOT_MEDIA',
      },
      {
        name: 'upload of an empty file',
        path: '/api/heygem/upload_file',
        multipart: {
          fields: { hash: 'tmp_4', ext: '.wav' },
          filename: 'a.wav',
          bytes: Buffer.alloc(0),
        },
        status: 400,
        code: 'EMPTY_FILE',
      },
      {
        name: 'legacy upload with only an audio',
        path: '/api/heygem/upload',
        form: { fields: {}, files: { audio: { bytes: media('l1', 'audio'), filename: 'a.wav' } } },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'legacy upload whose video is not media (the audio is not kept either)',
        path: '/api/heygem/upload',
        form: {
          fields: {},
          files: {
            audio: { bytes: media('l2', 'audio'), filename: 'a.wav' },
            video: {
              bytes: Buffer.from('<html>not a video</html>'.repeat(300)),
              filename: 'v.mp4',
            },
          },
        },
        status: 400,
        code: 'NOT_MEDIA',
      },
      {
        name: 'asset upload without a license key',
        path: '/api/asset/upload',
        form: {
          fields: { asset_type: 'voice' },
          files: { file: { bytes: media('as1', 'audio'), filename: 'v.wav' } },
        },
        status: 400,
        code: 'LICENSE_REQUIRED',
      },
      {
        name: 'asset upload of a bad type',
        path: '/api/asset/upload',
        form: {
          fields: { asset_type: 'music', license_key: 'OWNER' },
          files: { file: { bytes: media('as2', 'audio'), filename: 'v.wav' } },
        },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'asset upload without a file',
        path: '/api/asset/upload',
        form: { fields: { asset_type: 'voice', license_key: 'OWNER' }, files: {} },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'asset upload that is not media',
        path: '/api/asset/upload',
        form: {
          fields: { asset_type: 'avatar', license_key: 'OWNER' },
          files: { file: { bytes: Buffer.from('{"json":true}'.repeat(400)), filename: 'a.mp4' } },
        },
        status: 400,
        code: 'NOT_MEDIA',
      },
      {
        name: 'asset list without a license key',
        path: '/api/asset/list',
        status: 400,
        code: 'LICENSE_REQUIRED',
      },
      {
        name: 'asset delete without an id',
        path: '/api/asset/delete',
        json: { license_key: 'OWNER' },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'download with a wrong ?token=',
        path: `/api/heygem/download?task_id=${taskId}&token=wrong-token`,
        headers: {},
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'the secret as ?token= on another route',
        path: `/api/heygem/progress?task_id=${taskId}&token=${API_SECRET}`,
        headers: {},
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'upload over the size limit',
        path: '/api/heygem/upload_file',
        multipart: {
          fields: { hash: 'tmp_5', ext: '.wav' },
          filename: 'big.wav',
          bytes: Buffer.alloc(200_000, 1),
        },
        status: 413,
        code: 'FILE_TOO_LARGE',
      },
      {
        name: 'upload without the API secret',
        path: '/api/heygem/upload_file',
        headers: {},
        multipart: { fields: { ext: '.wav' }, filename: 'a.wav', bytes: media('u4', 'audio') },
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'bridge file with a PC secret',
        path: `/api/relay/files/${md5Buffer(audio)}`,
        status: 403,
        code: 'FORBIDDEN',
      },
      {
        name: 'bridge file with a bad hash',
        path: '/api/relay/files/..%2F..%2Fgateway.sqlite',
        headers: GPU1,
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'bridge file of another GPU',
        path: `/api/relay/files/${md5Buffer(audio)}`,
        headers: { authorization: `Bearer ${gpuBearer('gpu-2', GPU2_SECRET)}` },
        status: 404,
        code: 'FILE_NOT_FOUND',
      },
      {
        name: 'result for an unknown task',
        path: `/api/relay/tasks/${unknown}/result?attempt=1`,
        headers: GPU1,
        raw: { body: 'x', type: 'application/octet-stream' },
        status: 404,
        code: 'TASK_NOT_FOUND',
      },
      {
        name: 'result with a bad attempt',
        path: `/api/relay/tasks/${taskId}/result?attempt=abc`,
        headers: GPU1,
        raw: { body: 'x', type: 'application/octet-stream' },
        status: 400,
        code: 'VALIDATION_FAILED',
      },
      {
        name: 'result for a task not running',
        path: `/api/relay/tasks/${taskId}/result?attempt=1`,
        headers: GPU1,
        raw: { body: 'x', type: 'application/octet-stream' },
        status: 409,
        code: 'TASK_NOT_CURRENT',
      },
      {
        name: 'result from another GPU',
        path: `/api/relay/tasks/${taskId}/result?attempt=1`,
        headers: { authorization: `Bearer ${gpuBearer('gpu-2', GPU2_SECRET)}` },
        raw: { body: 'x', type: 'application/octet-stream' },
        status: 404,
        code: 'TASK_NOT_FOUND',
      },
      {
        name: 'an unknown route',
        path: '/api/heygem/../../secret',
        status: 404,
        code: 'ROUTE_NOT_FOUND',
      },
      {
        name: 'a path in other letter case, no secret',
        path: '/API/heygem/queue',
        headers: {},
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'history in other letter case, no secret',
        path: '/Api/heygem/task/history?license_key=OWNER',
        headers: {},
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'cancel in other letter case, no secret',
        path: '/API/heygem/task/cancel',
        headers: {},
        json: { task_id: taskId },
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'a path in other letter case, with the secret',
        path: '/API/heygem/queue',
        status: 404,
        code: 'ROUTE_NOT_FOUND',
      },
      {
        name: 'bridge file in other letter case, no token',
        path: `/api/Relay/files/${md5Buffer(audio)}`,
        headers: {},
        status: 403,
        code: 'FORBIDDEN',
      },
      {
        name: 'a GPU token naming __proto__',
        path: `/api/relay/files/${md5Buffer(audio)}`,
        headers: { authorization: 'Bearer gpu.__proto__.x' },
        status: 401,
        code: 'UNAUTHORIZED',
      },
      {
        name: 'a GPU token naming constructor',
        path: `/api/relay/files/${md5Buffer(audio)}`,
        headers: { authorization: 'Bearer gpu.constructor.x' },
        status: 401,
        code: 'UNAUTHORIZED',
      },
    ]

    let tried = 0
    let changes = 0
    const changed: string[] = []
    const wrong: string[] = []
    let before = await snapshot(dataDir)
    for (const c of cases) {
      const reply = await send(base, c)
      tried++
      const body = reply.body as { code?: unknown; msg?: unknown; data?: { error?: unknown } }
      if (
        reply.status !== c.status ||
        body.data?.error !== c.code ||
        body.code !== c.status ||
        typeof body.msg !== 'string'
      ) {
        wrong.push(`${c.name}: ${String(reply.status)} ${JSON.stringify(reply.body).slice(0, 200)}`)
      }
      const after = await snapshot(dataDir)
      if (after !== before) {
        changes++
        changed.push(c.name)
      }
      before = after
    }

    // MQTT: a rogue or buggy bridge with valid credentials.
    const gpu1 = await rogue(gw.mqttUrl, 'gpu-1', TEST_SECRETS.gpu)
    onTestFinished(() => endClient(gpu1, true))
    const refusals: string[] = []
    gpu1.on('message', (_t, p) => refusals.push(p.toString()))
    await gpu1.subscribeAsync('relay/gpus/gpu-1/control', { qos: 1 })
    const events = 'relay/gpus/gpu-1/events'
    const ev = (extra: object) => JSON.stringify({ v: 1, taskId, attempt: 1, seq: 5, ...extra })
    const mqttCases: [string, string, string | Buffer][] = [
      ['malformed JSON', events, '{"kind": "done",'],
      ['not an object', events, '42'],
      ['an unknown kind', events, ev({ kind: 'explode' })],
      [
        'progress beyond 100',
        events,
        ev({ kind: 'progress', progress: 500, stage: 'synthesizing' }),
      ],
      [
        'progress for a task not running',
        events,
        ev({ kind: 'progress', progress: 50, stage: 'synthesizing' }),
      ],
      [
        'done for a task not running',
        events,
        ev({ kind: 'done', result: { hash: 'a'.repeat(32), ext: '.mp4', size: 1 }, elapsedMs: 1 }),
      ],
      [
        'error for a task not running',
        events,
        ev({ kind: 'error', message: 'boom', retryable: false }),
      ],
      [
        'claim of an unknown task',
        events,
        JSON.stringify({ v: 1, kind: 'claim', taskId: unknown, attempt: 1, seq: 1, epoch: 1 }),
      ],
      ['claim of a wrong attempt', events, ev({ kind: 'claim', attempt: 9, epoch: 1 })],
      [
        'an event with a huge string',
        events,
        ev({ kind: 'error', message: 'x'.repeat(50_000), retryable: true }),
      ],
      ['a garbled state', 'relay/gpus/gpu-1/state', '{"v":1,"online":"yes"}'],
      ['a state with a bad epoch', 'relay/gpus/gpu-1/state', '{"v":1,"online":false,"epoch":-5}'],
    ]
    for (const [, topic, payload] of mqttCases) {
      await gpu1.publishAsync(topic, payload, { qos: 1 })
      tried++
    }
    // The gateway has handled all of them once it answers a claim sent after them.
    await gpu1.publishAsync(events, ev({ kind: 'claim', attempt: 8, seq: 1, epoch: 1 }), { qos: 1 })
    await waitFor(() => refusals.some((r) => r.includes('"attempt":8')), {
      what: 'the gateway caught up',
    })
    if ((await snapshot(dataDir)) !== before) {
      changes++
      changed.push('MQTT events and states from gpu-1')
    }

    // Another GPU claiming gpu-1's task from its own topic is refused; publishing as gpu-1 drops it.
    const gpu2 = await rogue(gw.mqttUrl, 'gpu-2', GPU2_SECRET)
    onTestFinished(() => endClient(gpu2, true))
    const refused2: string[] = []
    gpu2.on('message', (_t, p) => refused2.push(p.toString()))
    await gpu2.subscribeAsync('relay/gpus/gpu-2/control', { qos: 1 })
    await gpu2.publishAsync('relay/gpus/gpu-2/events', ev({ kind: 'claim', epoch: 1 }), { qos: 1 })
    await waitFor(() => refused2.some((r) => r.includes('reassigned')), {
      what: 'claim refused as reassigned',
    })
    tried++
    const dropped = new Promise<void>((resolve) => gpu2.once('close', () => resolve()))
    gpu2.publish(
      'relay/gpus/gpu-1/events',
      ev({ kind: 'done', result: { hash: 'a'.repeat(32), ext: '.mp4', size: 1 }, elapsedMs: 1 }),
      { qos: 1 },
    )
    await dropped
    tried++
    const oversized = new Promise<void>((resolve) => gpu1.once('close', () => resolve()))
    gpu1.publish(events, Buffer.alloc(100_000, 'x'), { qos: 1 })
    await oversized
    tried++
    if ((await snapshot(dataDir)) !== before) {
      changes++
      changed.push('MQTT from gpu-2, oversized payload')
    }

    const alive =
      (await requestJson(`${base}/api/heygem/health`)).status === 200 &&
      gw.child.process.exitCode === null
    const crashes = alive ? 0 : 1
    const line = `${String(tried)} bad inputs tried, ${String(crashes)} crashes, ${String(changes)} state changes`
    process.stdout.write(`${line}\n`)
    expect(wrong).toEqual([])
    expect(changed).toEqual([])
    expect({ crashes, changes }).toEqual({ crashes: 0, changes: 0 })
    expect(tried).toBeGreaterThanOrEqual(65)
  }, 60_000)
})
