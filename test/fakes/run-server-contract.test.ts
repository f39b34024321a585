/**
 * The fake run_server against the facts of the real one (docs/real-services.md §1): one table of
 * requests and the reply shapes they must record — HTTP status, content type, the exact key sets
 * (present and absent), the exact texts, and the CORS headers on every reply. `{name}` in a row is
 * a value of the fixture (uploaded hashes, task ids in known states).
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, test } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { bearer, call, record, submit, upload, waitForProgress } from './run-server-client.js'
import { startFakeRunServer, type FakeRunServer } from './run-server.js'
import type { CallSpec, FormFile } from './run-server-client.js'

const SECRET = 'contract-secret'
const RESULT_SIZE = 4096
const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type, Range',
  'access-control-expose-headers':
    'Content-Length, Content-Range, Accept-Ranges, Content-Disposition',
}
const JSON_TYPE = 'application/json'
const HTML_TYPE = 'text/html; charset=utf-8'
const QUEUE_KEYS = ['max_concurrent', 'processing', 'queued', 'total_tasks']
const PROGRESS_KEYS = [
  'task_id',
  'status',
  'progress',
  'message',
  'total_frames',
  'current_frame',
  'queue_position',
  'queue',
  'created_at',
  'started_at',
  'finished_at',
  'error',
]
const ERROR_KEYS = ['code', 'msg']
const OK_NO_MSG = ['code', 'data']
const OK_WITH_MSG = ['code', 'data', 'msg']
const ASSET_KEYS = ['asset_type', 'file_ext', 'file_hash', 'file_size', 'id', 'name']

/** vitest's asymmetric matchers, typed for the table. */
const matching = (pattern: RegExp): unknown => expect.stringMatching(pattern) as unknown
const containing = (subset: Record<string, unknown>): unknown =>
  expect.objectContaining(subset) as unknown
const anObject: unknown = expect.any(Object) as unknown

/** Bytes the rows upload, by name. */
const BYTES = {
  tmp: randomBytes(3000),
  avi: randomBytes(2000),
  legacyAudio: randomBytes(1500),
  legacyVideo: randomBytes(2500),
  voice: randomBytes(1200),
}
const file = (name: keyof typeof BYTES, filename: string): FormFile => ({
  bytes: BYTES[name],
  filename,
})

interface Row {
  readonly name: string
  readonly req: CallSpec
  /** Authorization header; default `Bearer {secret}`, null for none. */
  readonly auth?: string | null
  readonly status: number
  readonly type?: string
  /** The exact top-level keys of the JSON body. */
  readonly keys?: readonly string[]
  readonly msg?: string
  /** The exact keys of `data` (of its first item, for a list, with `items`). */
  readonly dataKeys?: readonly string[]
  readonly data?: unknown
  /** Some top-level keys and their values. */
  readonly has?: Readonly<Record<string, unknown>>
  /** The exact body text (Flask's jsonify: sorted keys, ASCII only, a final newline). */
  readonly text?: string
  /** Some keys of `data` and their values. */
  readonly dataHas?: Readonly<Record<string, unknown>>
  readonly items?: 'list' | 'tasks'
  readonly headers?: Readonly<Record<string, string>>
  readonly html?: string
  readonly bodyBytes?: number
}

// One request per line: a table reads better than prettier's layout of it.
// prettier-ignore
const TABLE: readonly Row[] = [
  // health: open, whatever the Authorization says
  { name: 'health without auth', req: { path: '/api/heygem/health' }, auth: null, status: 200, type: JSON_TYPE, keys: ['code', 'initialized', 'msg', 'queue'], msg: 'ok', has: { initialized: true, queue: { total_tasks: 4, processing: 1, queued: 1, max_concurrent: 1 } } },
  { name: 'health with a wrong secret', req: { path: '/api/heygem/health' }, auth: 'Bearer nope', status: 200, keys: ['code', 'initialized', 'msg', 'queue'] },
  // auth on every other route
  { name: 'progress without auth', req: { path: '/api/heygem/progress?task_id={done}' }, auth: null, status: 401, type: JSON_TYPE, keys: ERROR_KEYS, msg: '鉴权失败', text: '{"code":401,"msg":"\\u9274\\u6743\\u5931\\u8d25"}\n' },
  { name: 'progress with a wrong bearer', req: { path: '/api/heygem/progress?task_id={done}' }, auth: 'Bearer nope', status: 401, keys: ERROR_KEYS, msg: '鉴权失败' },
  { name: 'progress with the bare secret', req: { path: '/api/heygem/progress?task_id={done}' }, auth: '{secret}', status: 200, keys: OK_NO_MSG, dataKeys: PROGRESS_KEYS },
  { name: 'check_files without auth', req: { path: '/api/heygem/check_files', json: { files: [] } }, auth: null, status: 401, keys: ERROR_KEYS, msg: '鉴权失败' },
  { name: 'queue without auth', req: { path: '/api/heygem/queue' }, auth: null, status: 401, keys: ERROR_KEYS, msg: '鉴权失败' },
  { name: 'no query token on HTTP', req: { path: '/api/heygem/queue?token={secret}' }, auth: null, status: 401, msg: '鉴权失败' },
  // check_files
  { name: 'check_files with no files', req: { path: '/api/heygem/check_files', json: { files: [] } }, status: 200, type: JSON_TYPE, keys: OK_NO_MSG, data: {} },
  { name: 'check_files hit and miss, any hash and ext', req: { path: '/api/heygem/check_files', json: { files: [{ hash: '{audio}', ext: '.wav' }, { hash: 'not-a-md5', ext: '.xyz' }] } }, status: 200, keys: OK_NO_MSG, data: { '{audio}': true, 'not-a-md5': false } },
  { name: 'check_files, body not JSON', req: { path: '/api/heygem/check_files', raw: '{"files": [' }, status: 400, keys: ERROR_KEYS, msg: '请求体必须是合法的JSON' },
  // upload_file
  { name: 'upload_file with a tmp_ hash answers the real md5', req: { path: '/api/heygem/upload_file', form: { hash: 'tmp_1718000000_ab12', ext: '.mp4', file: file('tmp', 'clip.mp4') } }, status: 200, type: JSON_TYPE, keys: OK_NO_MSG, dataKeys: ['hash', 'server_path'], data: { hash: '{tmpMd5}', server_path: matching(/\/uploads\/store\/[0-9a-f]{32}\.mp4$/) } },
  { name: 'upload_file without ext takes the file name\'s', req: { path: '/api/heygem/upload_file', form: { hash: '{aviMd5}', file: file('avi', 'avatar.avi') } }, status: 200, data: { hash: '{aviMd5}', server_path: matching(/\.avi$/) } },
  { name: 'upload_file without file', req: { path: '/api/heygem/upload_file', form: { hash: '{aviMd5}', ext: '.avi' } }, status: 400, keys: ERROR_KEYS, msg: '缺少 file 字段' },
  { name: 'upload_file without hash', req: { path: '/api/heygem/upload_file', form: { ext: '.avi', file: file('avi', 'a.avi') } }, status: 400, keys: ERROR_KEYS, msg: '缺少 hash 字段' },
  // submit
  { name: 'submit, new job', req: { path: '/api/heygem/submit', json: { audio_hash: '{fresh}', audio_ext: '.wav', video_hash: '{video}', video_ext: '.mp4', license_key: '' } }, status: 200, type: JSON_TYPE, keys: OK_WITH_MSG, msg: '任务已提交', dataKeys: ['queue', 'task_id'], data: { task_id: matching(/^[0-9a-f]{16}$/), queue: containing({ max_concurrent: 1 }) } },
  { name: 'submit, defaults .wav and .mp4, no license_key', req: { path: '/api/heygem/submit', json: { audio_hash: '{fresh2}', video_hash: '{video}' } }, status: 200, msg: '任务已提交', dataKeys: ['queue', 'task_id'] },
  { name: 'submit, cache hit', req: { path: '/api/heygem/submit', json: { audio_hash: '{audio}', video_hash: '{video}', license_key: 'K' } }, status: 200, keys: OK_WITH_MSG, msg: '缓存命中，直接返回', dataKeys: ['cached', 'queue', 'task_id'], data: { task_id: '{cacheKey}', cached: true, queue: containing({ max_concurrent: 1 }) } },
  { name: 'submit, empty hashes', req: { path: '/api/heygem/submit', json: { audio_hash: ' ', video_hash: '' } }, status: 400, keys: ERROR_KEYS, msg: 'audio_hash 和 video_hash 不能为空' },
  { name: 'submit, audio not uploaded', req: { path: '/api/heygem/submit', json: { audio_hash: 'abc', audio_ext: '.mp3', video_hash: '{video}' } }, status: 404, keys: ERROR_KEYS, msg: '音频文件不存在: abc.mp3，请先上传' },
  { name: 'submit, video not uploaded', req: { path: '/api/heygem/submit', json: { audio_hash: '{audio}', video_hash: 'def' } }, status: 404, keys: ERROR_KEYS, msg: '视频文件不存在: def.mp4，请先上传' },
  { name: 'submit, body not JSON', req: { path: '/api/heygem/submit', raw: 'audio_hash=1' }, status: 400, keys: ERROR_KEYS, msg: '请求体必须是合法的JSON' },
  // legacy upload
  { name: 'legacy upload', req: { path: '/api/heygem/upload', form: { audio: file('legacyAudio', 'a.wav'), video: file('legacyVideo', 'v.mp4') } }, status: 200, keys: OK_WITH_MSG, msg: '任务已提交', dataKeys: ['queue', 'task_id'], data: { task_id: matching(/^[0-9a-f]{16}$/), queue: anObject } },
  { name: 'legacy upload without video', req: { path: '/api/heygem/upload', form: { audio: file('legacyAudio', 'a.wav') } }, status: 400, keys: ERROR_KEYS, msg: '请上传 audio 和 video 文件' },
  // progress
  { name: 'progress, done', req: { path: '/api/heygem/progress?task_id={done}' }, status: 200, type: JSON_TYPE, keys: OK_NO_MSG, dataKeys: PROGRESS_KEYS, dataHas: { task_id: '{done}', status: 'done', progress: 100, message: '合成完成', error: '', queue_position: 0, total_frames: 250, current_frame: 250 } },
  { name: 'progress, failed', req: { path: '/api/heygem/progress?task_id={failed}' }, status: 200, dataKeys: PROGRESS_KEYS, dataHas: { status: 'error', progress: 0, message: '合成失败: 未检测到人脸', error: '未检测到人脸' } },
  { name: 'progress, synthesizing', req: { path: '/api/heygem/progress?task_id={hung}' }, status: 200, dataKeys: PROGRESS_KEYS, dataHas: { status: 'synthesizing', progress: 30, total_frames: 250, finished_at: 0, error: '' } },
  { name: 'progress, queued', req: { path: '/api/heygem/progress?task_id={queued}' }, status: 200, dataKeys: PROGRESS_KEYS, dataHas: { status: 'queued', progress: 1, message: '排队等待中... (第1位)', queue_position: 1, started_at: 0, finished_at: 0 } },
  { name: 'progress, cache hit', req: { path: '/api/heygem/progress?task_id={cacheKey}' }, status: 200, dataHas: { status: 'done', progress: 100, message: '合成完成（缓存命中）' } },
  { name: 'progress without task_id', req: { path: '/api/heygem/progress' }, status: 400, keys: ERROR_KEYS, msg: '缺少 task_id' },
  { name: 'progress, unknown task', req: { path: '/api/heygem/progress?task_id=0123456789abcdef' }, status: 404, keys: ERROR_KEYS, msg: '任务 0123456789abcdef 不存在' },
  // download
  { name: 'download, done', req: { path: '/api/heygem/download?task_id={done}' }, status: 200, type: 'video/mp4', headers: { 'content-disposition': 'inline; filename={done}.mp4', 'accept-ranges': 'bytes', 'content-length': String(RESULT_SIZE) }, bodyBytes: RESULT_SIZE },
  { name: 'download, a range', req: { path: '/api/heygem/download?task_id={done}', headers: { range: 'bytes=100-199' } }, status: 206, type: 'video/mp4', headers: { 'content-range': `bytes 100-199/${String(RESULT_SIZE)}`, 'content-length': '100' }, bodyBytes: 100 },
  { name: 'download, not done', req: { path: '/api/heygem/download?task_id={hung}' }, status: 400, keys: ERROR_KEYS, msg: '任务尚未完成 (当前状态: synthesizing)' },
  { name: 'download, queued', req: { path: '/api/heygem/download?task_id={queued}' }, status: 400, msg: '任务尚未完成 (当前状态: queued)' },
  { name: 'download, failed', req: { path: '/api/heygem/download?task_id={failed}' }, status: 400, msg: '任务尚未完成 (当前状态: error)' },
  { name: 'download without task_id', req: { path: '/api/heygem/download' }, status: 400, keys: ERROR_KEYS, msg: '缺少 task_id' },
  { name: 'download, unknown task', req: { path: '/api/heygem/download?task_id=ffff' }, status: 404, keys: ERROR_KEYS, msg: '任务 ffff 不存在' },
  // queue
  { name: 'queue', req: { path: '/api/heygem/queue' }, status: 200, type: JSON_TYPE, keys: OK_NO_MSG, dataKeys: [...QUEUE_KEYS, 'tasks'], items: 'tasks' },
  // assets
  { name: 'asset upload', req: { path: '/api/asset/upload', form: { license_key: 'LIC-1', asset_type: 'voice', file: file('voice', '我的 声音.wav') } }, status: 200, keys: OK_NO_MSG, dataKeys: ASSET_KEYS, data: { id: 1, name: '我的 声音', asset_type: 'voice', file_hash: '{voiceMd5}', file_ext: '.wav', file_size: 1200 } },
  { name: 'asset upload again: deduplicated', req: { path: '/api/asset/upload', form: { license_key: 'LIC-1', asset_type: 'voice', name: 'renamed', file: file('voice', 'v.wav') } }, status: 200, data: { id: 1, name: 'renamed', asset_type: 'voice', file_hash: '{voiceMd5}', file_ext: '.wav', file_size: 1200 } },
  { name: 'asset upload, bad type', req: { path: '/api/asset/upload', form: { license_key: 'LIC-1', asset_type: 'music', file: file('voice', 'v.wav') } }, status: 400, keys: ERROR_KEYS, msg: 'asset_type 必须为 voice 或 avatar' },
  { name: 'asset upload without license', req: { path: '/api/asset/upload', form: { asset_type: 'voice', file: file('voice', 'v.wav') } }, status: 400, keys: ERROR_KEYS, msg: '缺少 license_key' },
  { name: 'asset upload without file', req: { path: '/api/asset/upload', form: { license_key: 'LIC-1', asset_type: 'voice' } }, status: 400, keys: ERROR_KEYS, msg: '缺少 file' },
  { name: 'asset list', req: { path: '/api/asset/list?license_key=LIC-1&asset_type=voice' }, status: 200, keys: OK_NO_MSG, items: 'list', dataKeys: [...ASSET_KEYS.filter((k) => k !== 'id'), 'created_at', 'days_left', 'id'].sort() },
  { name: 'asset list of another license', req: { path: '/api/asset/list?license_key=LIC-2' }, status: 200, keys: OK_NO_MSG, data: [] },
  { name: 'asset list without license', req: { path: '/api/asset/list' }, status: 400, keys: ERROR_KEYS, msg: '缺少 license_key' },
  { name: 'asset delete', req: { path: '/api/asset/delete', json: { id: 1, license_key: 'LIC-1' } }, status: 200, keys: ['code', 'msg'], msg: '已删除' },
  { name: 'asset delete, nothing matches', req: { path: '/api/asset/delete', json: { id: 99, license_key: 'LIC-1' } }, status: 200, keys: ['code', 'msg'], msg: '已删除' },
  { name: 'asset delete without id', req: { path: '/api/asset/delete', json: { license_key: 'LIC-1' } }, status: 400, keys: ERROR_KEYS, msg: '缺少 id 或 license_key' },
  // Flask's own pages and CORS preflight
  { name: 'unknown path', req: { path: '/api/heygem/nope' }, status: 404, type: HTML_TYPE, html: '<title>404 Not Found</title>' },
  { name: 'unknown path without auth', req: { path: '/api/heygem/task/status?task_id=x' }, auth: null, status: 404, type: HTML_TYPE, html: '<h1>Not Found</h1>' },
  { name: 'a route with the wrong method', req: { method: 'GET', path: '/api/heygem/submit' }, status: 405, type: HTML_TYPE, html: '<title>405 Method Not Allowed</title>' },
  { name: 'OPTIONS preflight, no auth', req: { method: 'OPTIONS', path: '/api/heygem/submit', headers: { origin: 'http://h5.example', 'access-control-request-method': 'POST' } }, auth: null, status: 200, headers: { allow: 'OPTIONS, POST' }, bodyBytes: 0 },
  { name: 'OPTIONS on download', req: { method: 'OPTIONS', path: '/api/heygem/download?task_id={done}' }, auth: null, status: 200, bodyBytes: 0 },
]

const values: Record<string, string> = { secret: SECRET }
let gpu: FakeRunServer

/** `{name}` → the fixture's value, in strings, arrays and plain objects (matchers untouched). */
function fill<T>(value: T): T {
  if (typeof value === 'string') {
    return value.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole) as T
  }
  if (Array.isArray(value)) return value.map(fill) as T
  if (
    typeof value === 'object' &&
    value !== null &&
    Object.getPrototypeOf(value) === Object.prototype
  ) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [fill(k), fill(v)])) as T
  }
  return value
}

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'gpu-relay-contract-'))
  gpu = await startFakeRunServer({
    dir,
    apiSecret: SECRET,
    durationMs: 200,
    resultSize: RESULT_SIZE,
  })
  const teardown = async (): Promise<void> => {
    await gpu.close()
    await rm(dir, { recursive: true, force: true })
  }
  const media = (): Buffer => randomBytes(2048)
  const video = await upload(gpu, media(), { ext: '.mp4', secret: SECRET })
  const [audio, failedAudio, hungAudio, queuedAudio, fresh, fresh2] = await Promise.all(
    Array.from({ length: 6 }, () => upload(gpu, media(), { ext: '.wav', secret: SECRET })),
  )
  Object.assign(values, { video, audio, fresh, fresh2 })
  const done = String((await submit(gpu, { audio: audio ?? '', video }, SECRET)).task_id)
  await waitForProgress(gpu, done, { until: (p) => p.status === 'done', secret: SECRET })
  // The result (and its cache copy) is on disk once a download succeeds.
  await call(gpu.url, { path: `/api/heygem/download?task_id=${done}`, headers: bearer(SECRET) })
  gpu.failNext('未检测到人脸')
  const failed = String((await submit(gpu, { audio: failedAudio ?? '', video }, SECRET)).task_id)
  await waitForProgress(gpu, failed, { until: (p) => p.status === 'error', secret: SECRET })
  gpu.hangNext(30)
  const hung = String((await submit(gpu, { audio: hungAudio ?? '', video }, SECRET)).task_id)
  const queued = String((await submit(gpu, { audio: queuedAudio ?? '', video }, SECRET)).task_id)
  await waitForProgress(gpu, hung, { until: (p) => p.progress === 30, secret: SECRET })
  const cacheKey = createHash('md5')
    .update(`${audio ?? ''}_${video}`)
    .digest('hex')
    .slice(0, 16)
  Object.assign(values, { done, failed, hung, queued, cacheKey })
  for (const [name, bytes] of Object.entries(BYTES)) values[`${name}Md5`] = md5Buffer(bytes)
  return teardown
})

function sorted(keys: readonly string[]): string[] {
  return [...keys].sort()
}

function keysOf(value: unknown): string[] {
  return Object.keys(record(value)).sort()
}

/** The JSON checks of a row: code, key sets (present and absent), texts, data, nested queues. */
function checkJson(row: Row, body: Record<string, unknown>): void {
  expect(body.code).toBe(row.status === 200 ? 0 : row.status)
  if (row.keys !== undefined) expect(keysOf(body)).toEqual(sorted(row.keys))
  if (row.msg !== undefined) expect(body.msg).toBe(row.msg)
  if (row.status !== 200) expect(body).not.toHaveProperty('data')
  if (row.data !== undefined) expect(body.data).toEqual(fill(row.data))
  if (row.has !== undefined) expect(body).toMatchObject(fill(row.has))
  if (row.dataHas !== undefined) expect(body.data).toMatchObject(fill(row.dataHas))
  const data = body.data
  if (row.items === 'list') {
    expect(Array.isArray(data)).toBe(true)
    expect(keysOf((data as unknown[])[0])).toEqual(sorted(row.dataKeys ?? []))
  } else if (row.items === 'tasks') {
    expect(keysOf(data)).toEqual(sorted(row.dataKeys ?? []))
    const first = (record(data).tasks as unknown[])[0]
    expect(keysOf(first)).toEqual(['created_at', 'progress', 'status', 'task_id'])
  } else if (row.dataKeys !== undefined) {
    expect(keysOf(data)).toEqual(sorted(row.dataKeys))
  }
  // Every queue object, at the top (health) or in data, has exactly run_server's four keys.
  if (body.queue !== undefined) expect(keysOf(body.queue)).toEqual(sorted(QUEUE_KEYS))
  const inner = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {}
  if (inner.queue !== undefined) expect(keysOf(inner.queue)).toEqual(sorted(QUEUE_KEYS))
}

describe('fake run_server contract', () => {
  test.each(TABLE.map((row) => [row.name, row] as const))('%s', async (_name, row) => {
    const auth = row.auth === undefined ? `Bearer ${SECRET}` : row.auth
    const spec = fill(row.req)
    const reply = await call(gpu.url, {
      ...spec,
      headers: { ...spec.headers, ...(auth === null ? {} : { authorization: fill(auth) }) },
    })
    expect(reply.status).toBe(row.status)
    for (const [name, value] of Object.entries(CORS)) expect(reply.headers.get(name)).toBe(value)
    if (row.type !== undefined) expect(reply.headers.get('content-type')).toBe(row.type)
    for (const [name, value] of Object.entries(fill(row.headers ?? {}))) {
      expect(reply.headers.get(name)).toBe(value)
    }
    if (row.html !== undefined) expect(reply.text).toContain(row.html)
    if (row.text !== undefined) expect(reply.text).toBe(row.text)
    if (row.bodyBytes !== undefined) expect(reply.bytes.length).toBe(row.bodyBytes)
    const json =
      row.keys !== undefined ||
      row.msg !== undefined ||
      row.dataKeys !== undefined ||
      row.data !== undefined ||
      row.dataHas !== undefined ||
      row.has !== undefined
    if (json) checkJson(row, record(reply.body))
    else if (row.type === HTML_TYPE || row.bodyBytes !== undefined)
      expect(reply.body).toBeUndefined()
  })
})
