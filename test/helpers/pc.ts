/**
 * What a PC does over HTTP, spelled out with plain requests (the pc-adapter has its own tests):
 * upload bytes, submit, read status and progress, download.
 */
import { Readable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import { md5Buffer } from '../../lib/hash.js'
import { requestJson, uploadMultipart } from '../../lib/http-client.js'
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

export function media(label: string, size = 4096): Buffer {
  return Buffer.concat([Buffer.from(label), randomBytes(size)])
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
  audio: string,
  video: string,
  licenseKey: string,
): Promise<Envelope> {
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
  const audio = await upload(baseUrl, media('a'), '.wav')
  const video = await upload(baseUrl, media('v'), '.mp4')
  return String((await submitTask(baseUrl, audio, video, licenseKey)).data.task_id)
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
