/**
 * What a PC does over HTTP, spelled out with plain requests (the pc-adapter has its own tests):
 * upload bytes, submit, read status and progress, download.
 */
import { Readable } from 'node:stream'
import { md5Buffer } from '../../lib/hash.js'
import { requestJson, uploadMultipart } from '../../lib/http-client.js'
import { mediaBytes, type MediaKind } from './media.js'
import { waitFor } from './wait-for.js'
import { TaskState, isTerminal } from '../../protocol/index.js'

export interface Envelope {
  readonly code: number
  readonly msg: string
  readonly data: Record<string, unknown>
}

function asEnvelope(body: unknown): Envelope {
  if (typeof body !== 'object' || body === null || !('code' in body) || !('msg' in body)) {
    throw new Error(`not an envelope: ${JSON.stringify(body)}`)
  }
  const data =
    'data' in body && typeof body.data === 'object' && body.data !== null ? body.data : {}
  return { code: Number(body.code), msg: String(body.msg), data: data as Record<string, unknown> }
}

/**
 * A fresh audio (WAVE) or video (MP4) file with its own md5: the gateway takes only content it
 * sniffs as audio or video. Other containers: helpers/media.ts.
 */
export function media(label: string, kind: MediaKind, size = 4096): Buffer {
  return mediaBytes(kind, label, size)
}

export async function upload(baseUrl: string, bytes: Buffer, ext: string): Promise<string> {
  const reply = await uploadMultipart({
    url: `${baseUrl}/api/heygem/upload_file`,
    source: Readable.from([bytes]),
    size: bytes.length,
    fields: { hash: md5Buffer(bytes), ext },
    fileField: 'file',
    filename: `input${ext}`,
  })
  const env = asEnvelope(reply.body)
  if (env.code !== 0) throw new Error(`upload failed: ${env.msg}`)
  return String(env.data.hash)
}

export async function call(
  baseUrl: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; env: Envelope }> {
  const reply = await requestJson(`${baseUrl}${path}`, body === undefined ? {} : { body })
  return { status: reply.status, env: asEnvelope(reply.body) }
}

export async function submitTask(
  baseUrl: string,
  task: { readonly audio: string; readonly video: string; readonly licenseKey: string },
): Promise<Envelope> {
  const { audio, video, licenseKey } = task
  const { env } = await call(baseUrl, '/api/heygem/task/submit', {
    audio_hash: audio,
    audio_ext: '.wav',
    video_hash: video,
    video_ext: '.mp4',
    license_key: licenseKey,
  })
  if (env.code !== 0) throw new Error(`submit failed: ${env.msg}`)
  return env
}

export async function taskStatus(
  baseUrl: string,
  taskId: string,
): Promise<Record<string, unknown>> {
  const { env } = await call(baseUrl, `/api/heygem/task/status?task_id=${taskId}`)
  if (env.code !== 0) throw new Error(`status failed: ${env.msg}`)
  return env.data
}

export async function download(
  baseUrl: string,
  taskId: string,
): Promise<{ status: number; bytes: Buffer }> {
  const res = await fetch(`${baseUrl}/api/heygem/download?task_id=${taskId}`)
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()) }
}

/** Upload a fresh audio and video and submit them: the new task's id. */
export async function submitFresh(baseUrl: string, licenseKey = 'K'): Promise<string> {
  const audio = await upload(baseUrl, media('a', 'audio'), '.wav')
  const video = await upload(baseUrl, media('v', 'video'), '.mp4')
  return String((await submitTask(baseUrl, { audio, video, licenseKey })).data.task_id)
}

/** Wait until a task reaches a final state; resolves with its status. */
export async function finalStatus(
  baseUrl: string,
  taskId: string,
  timeoutMs = 20_000,
): Promise<Record<string, unknown>> {
  return waitFor(
    async () => {
      const s = await taskStatus(baseUrl, taskId)
      const state = TaskState.safeParse(s.status)
      return state.success && isTerminal(state.data) ? s : null
    },
    { what: `task ${taskId} final`, timeoutMs },
  )
}

/** A multipart form as a browser sends it (several files, any fields), and the parsed reply. */
export async function postForm(
  url: string,
  parts: {
    readonly fields: Record<string, string>
    readonly files: Record<string, { readonly bytes: Buffer; readonly filename: string }>
    readonly headers?: Record<string, string>
  },
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const { fields, files, headers = {} } = parts
  const form = new FormData()
  for (const [name, value] of Object.entries(fields)) form.append(name, value)
  for (const [name, file] of Object.entries(files)) {
    form.append(name, new Blob([file.bytes]), file.filename)
  }
  const res = await fetch(url, { method: 'POST', body: form, headers })
  const body = (await res.json()) as Record<string, unknown>
  return { status: res.status, body, headers: res.headers }
}
