/**
 * What the submits share (the GPU-API submit, the seed's task submit, the legacy upload):
 * run_server's checks of the two inputs, with its words, and the GPU-API reply.
 */
import type { Request } from 'express'
import type { RouteDeps } from './deps.js'
import { queueInfo } from './health.js'
import type { Submitted } from '../task-actions.js'
import { appError } from '../../lib/errors.js'

interface InputRef {
  readonly hash: string
  readonly ext: string
}

/**
 * Both hashes given, and both files in the pool: else run_server's 400 and 404 (before a task
 * exists). Any hash string may be asked for; one that is not an md5 is simply not there.
 */
export async function assertInputs(
  pool: RouteDeps['pool'],
  audio: InputRef,
  video: InputRef,
): Promise<void> {
  if (audio.hash === '' || video.hash === '') {
    throw appError('VALIDATION_FAILED', { variant: 'inputHashesEmpty' })
  }
  for (const [input, what] of [
    [audio, '音频'],
    [video, '视频'],
  ] as const) {
    if (!(await pool.has(input.hash))) {
      throw appError('FILE_NOT_FOUND', {
        variant: 'submitInput',
        params: { what, hash: input.hash, ext: input.ext },
        details: { hash: input.hash },
      })
    }
  }
}

/**
 * A submit's `webhook_url` checked (gateway/webhooks/url-guard.ts): null when none (or `""`),
 * else the URL to store, or WEBHOOK_URL_REFUSED.
 */
export async function submitWebhookUrl(
  deps: Pick<RouteDeps, 'webhooks'>,
  req: Request,
  raw: string | undefined,
): Promise<string | null> {
  if (raw === undefined || raw === '') return null
  if (!deps.webhooks) throw appError('WEBHOOK_URL_REFUSED')
  return deps.webhooks.checkUrl(raw, req.get('host') ?? null)
}

/** The owner a submit names: its `license_key` when not empty, else the request's (header, query). */
export function submitOwner(
  bodyLicense: string | undefined,
  requestLicense: string | null,
): string | null {
  return bodyLicense !== undefined && bodyLicense !== '' ? bodyLicense : requestLicense
}

/** `done` (a cache hit), `queued` (no GPU ready to take it), else `submitted`. */
export function submitStatus(view: Submitted): 'submitted' | 'queued' | 'done' {
  if (view.row.state === 'done') return 'done'
  if (view.row.state === 'queued' && view.gpusReady === 0) return 'queued'
  return 'submitted'
}

/** `msg` of a GPU-API submit, as run_server words it. */
export function submitMessage(view: Submitted): string {
  return view.cacheHit ? '缓存命中，直接返回' : '任务已提交'
}

/**
 * `data` of a GPU-API submit: run_server's `task_id`, `queue` (its four keys) and, for a cache
 * hit, `cached: true`; ours added (`status`, `message`, the queue position and estimate).
 */
export function submitData(view: Submitted, deps: Pick<RouteDeps, 'views'>) {
  return {
    task_id: view.row.id,
    ...(view.cacheHit ? { cached: true } : {}),
    status: submitStatus(view),
    message: view.message,
    queue: {
      ...queueInfo(deps.views.queue()),
      position: view.position,
    },
  }
}
