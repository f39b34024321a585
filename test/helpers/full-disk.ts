/**
 * What the full-disk tests ask a gateway: every way in for new bytes or tasks (each must be a
 * prompt 507 DISK_FULL), every way to read (each must still answer), and the staging folder.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'vitest'
import { media, postForm } from './pc.js'
import { waitFor } from './wait-for.js'
import { DISK_FULL_MSG } from '../../gateway/disk-space.js'

export interface Refusal {
  readonly what: string
  readonly status: number
  readonly error: unknown
  readonly msg: unknown
  readonly ms: number
}

async function timed(
  what: string,
  work: () => Promise<{ status: number; body: Record<string, unknown> }>,
): Promise<Refusal> {
  const started = performance.now()
  const { status, body } = await work()
  const data = (body.data ?? {}) as Record<string, unknown>
  return { what, status, error: data.error, msg: body.msg, ms: performance.now() - started }
}

async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

/** Each upload route and each submit route, with inputs that are in the pool. */
export async function tryNewWork(
  url: string,
  inputs: { audio: string; video: string },
  headers: Record<string, string> = {},
): Promise<Refusal[]> {
  const audio = media(`disk-a-${String(Math.random())}`, 'audio', 256 * 1024)
  const video = media(`disk-v-${String(Math.random())}`, 'video', 256 * 1024)
  const submit = {
    audio_hash: inputs.audio,
    audio_ext: '.wav',
    video_hash: inputs.video,
    video_ext: '.mp4',
    license_key: 'K-disk',
  }
  return [
    await timed('upload_file', () =>
      postForm(`${url}/api/heygem/upload_file`, {
        fields: { hash: 'x', ext: '.wav' },
        files: { file: { bytes: audio, filename: 'a.wav' } },
        headers,
      }),
    ),
    await timed('legacy upload', () =>
      postForm(`${url}/api/heygem/upload`, {
        fields: { license_key: 'K-disk' },
        files: {
          audio: { bytes: audio, filename: 'a.wav' },
          video: { bytes: video, filename: 'v.mp4' },
        },
        headers,
      }),
    ),
    await timed('asset upload', () =>
      postForm(`${url}/api/asset/upload`, {
        fields: { license_key: 'K-disk', asset_type: 'voice' },
        files: { file: { bytes: audio, filename: 'voice.wav' } },
        headers,
      }),
    ),
    await timed('task submit', () => postJson(`${url}/api/heygem/task/submit`, submit, headers)),
    await timed('GPU-API submit', () => postJson(`${url}/api/heygem/submit`, submit, headers)),
  ]
}

/**
 * Wait until the gateway has seen the disk as full: a body that is no multipart is refused 400
 * without a write while there is room, 507 before a byte is read once the disk is full (the
 * free space is read at most once a second).
 */
export async function untilSeenFull(url: string): Promise<void> {
  await waitFor(
    async () => {
      const res = await fetch(`${url}/api/heygem/upload_file`, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: 'probe',
      })
      await res.arrayBuffer()
      return res.status === 507
    },
    { what: 'the gateway sees the disk full', timeoutMs: 10_000 },
  )
}

/** Every refusal is the agreed 507 DISK_FULL with its Chinese text. */
export function expectAllDiskFull(refusals: readonly Refusal[]): void {
  expect(refusals.map((r) => [r.what, r.status, r.error, r.msg])).toEqual(
    refusals.map((r) => [r.what, 507, 'DISK_FULL', DISK_FULL_MSG]),
  )
}

/** Status, progress, history, queue and the download of a done task: all answered. */
export async function readsAnswer(
  url: string,
  ids: { done: string | null; queued: readonly string[] },
  headers: Record<string, string> = {},
): Promise<Record<string, number>> {
  const get = async (path: string): Promise<number> => {
    const res = await fetch(`${url}${path}`, { headers, signal: AbortSignal.timeout(15_000) })
    await res.arrayBuffer()
    return res.status
  }
  const seen: Record<string, number> = {}
  for (const id of [...(ids.done === null ? [] : [ids.done]), ...ids.queued]) {
    seen[`status ${id}`] = await get(`/api/heygem/task/status?task_id=${id}`)
    seen[`progress ${id}`] = await get(`/api/heygem/progress?task_id=${id}`)
  }
  seen.history = await get('/api/heygem/task/history?license_key=K-disk')
  seen.queue = await get('/api/heygem/queue')
  seen.health = await get('/api/heygem/health')
  if (ids.done !== null) seen.download = await get(`/api/heygem/download?task_id=${ids.done}`)
  return seen
}

export function allOk(seen: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(seen).map((k) => [k, 200]))
}

/** Files left in the gateway's staging folder (uploads not committed). */
export async function stagedFiles(gatewayDataDir: string): Promise<string[]> {
  return readdir(join(gatewayDataDir, 'files', 'tmp')).catch(() => [])
}
