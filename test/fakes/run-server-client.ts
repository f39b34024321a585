/**
 * Plain HTTP calls to the fake run_server for its own tests, recording what came back (status,
 * headers, raw text, parsed JSON when the reply says it is JSON): the tests judge the shapes, so
 * nothing here assumes one.
 */
import { md5Buffer } from '../../lib/hash.js'
import { waitFor } from '../helpers/wait-for.js'
import type { FakeRunServer } from './run-server.js'

export interface FormFile {
  readonly bytes: Buffer
  readonly filename: string
}

export interface CallSpec {
  readonly method?: string
  readonly path: string
  readonly headers?: Readonly<Record<string, string>>
  readonly json?: unknown
  readonly raw?: string
  readonly form?: Readonly<Record<string, string | FormFile>>
}

export interface Recorded {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly bytes: Buffer
  /** The parsed body when the reply's type is application/json, else undefined. */
  readonly body: unknown
}

function requestBody(spec: CallSpec): { body?: string | FormData; type?: string } {
  if (spec.json !== undefined) return { body: JSON.stringify(spec.json), type: 'application/json' }
  if (spec.raw !== undefined) return { body: spec.raw, type: 'application/json' }
  if (spec.form === undefined) return {}
  const form = new FormData()
  for (const [name, value] of Object.entries(spec.form)) {
    if (typeof value === 'string') form.append(name, value)
    else form.append(name, new Blob([new Uint8Array(value.bytes)]), value.filename)
  }
  return { body: form }
}

export async function call(baseUrl: string, spec: CallSpec): Promise<Recorded> {
  const { body, type } = requestBody(spec)
  const headers: Record<string, string> = { ...(type ? { 'content-type': type } : {}) }
  Object.assign(headers, spec.headers)
  const res = await fetch(`${baseUrl}${spec.path}`, {
    method: spec.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
  })
  const bytes = Buffer.from(await res.arrayBuffer())
  const text = bytes.toString('utf8')
  const isJson = (res.headers.get('content-type') ?? '').startsWith('application/json')
  const parsed: unknown = isJson ? JSON.parse(text) : undefined
  return { status: res.status, headers: res.headers, text, bytes, body: parsed }
}

export function record(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`not an object: ${JSON.stringify(value)}`)
  }
  return value as Record<string, unknown>
}

/** `data` of a `{code: 0, data}` reply; throws on anything else. */
export function dataOf(reply: Recorded): Record<string, unknown> {
  const body = record(reply.body)
  if (reply.status !== 200 || body.code !== 0) throw new Error(`not ok: ${reply.text}`)
  return record(body.data)
}

export function bearer(secret: string | undefined): Record<string, string> {
  return secret === undefined ? {} : { authorization: `Bearer ${secret}` }
}

/** upload_file under the bytes' own md5; resolves with the answered hash. */
export async function upload(
  gpu: FakeRunServer,
  bytes: Buffer,
  as: { readonly ext: string; readonly secret?: string },
): Promise<string> {
  const { ext, secret } = as
  const reply = await call(gpu.url, {
    path: '/api/heygem/upload_file',
    headers: bearer(secret),
    form: { hash: md5Buffer(bytes), ext, file: { bytes, filename: `input${ext}` } },
  })
  return String(dataOf(reply).hash)
}

/** submit by hash; resolves with the whole `data`. */
export async function submit(
  gpu: FakeRunServer,
  inputs: { readonly audio: string; readonly video: string },
  secret?: string,
): Promise<Record<string, unknown>> {
  const reply = await call(gpu.url, {
    path: '/api/heygem/submit',
    headers: bearer(secret),
    json: {
      audio_hash: inputs.audio,
      audio_ext: '.wav',
      video_hash: inputs.video,
      video_ext: '.mp4',
    },
  })
  return dataOf(reply)
}

export async function progressOf(
  gpu: FakeRunServer,
  taskId: string,
  secret?: string,
): Promise<Record<string, unknown>> {
  const reply = await call(gpu.url, {
    path: `/api/heygem/progress?task_id=${taskId}`,
    headers: bearer(secret),
  })
  return dataOf(reply)
}

/** Wait until the task's progress data satisfies `done`; resolves with that data. */
export async function waitForProgress(
  gpu: FakeRunServer,
  taskId: string,
  options: {
    readonly until: (data: Record<string, unknown>) => boolean
    readonly secret?: string
    readonly what?: string
  },
): Promise<Record<string, unknown>> {
  const done = options.until
  return waitFor(
    async () => {
      const data = await progressOf(gpu, taskId, options.secret)
      return done(data) && data
    },
    { what: options.what ?? `task ${taskId}`, intervalMs: 10 },
  )
}
