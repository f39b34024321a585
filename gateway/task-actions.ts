/**
 * What owners do to tasks: submit (write, then publish; idempotent by request key; an identical
 * finished task answers at once), cancel, and retry a failed one.
 */
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Dispatcher } from './dispatcher.js'
import type { FilePool } from './file-pool.js'
import type { NewTask, TaskLifecycle } from './task-lifecycle.js'
import type { TaskService, TaskView } from './task-service.js'
import type { TaskStore } from './task-store.js'
import { appError } from '../lib/errors.js'
import { DEFAULT_TASK_TYPE, type FileRef } from '../protocol/index.js'

export interface TaskActionsDeps {
  readonly store: TaskStore
  readonly lifecycle: TaskLifecycle
  readonly pool: FilePool
  readonly dispatcher: Dispatcher
  readonly views: TaskService
  readonly log: Logger
  readonly now: () => number
  readonly queueTtlMs: number
}

export interface SubmitInput {
  readonly owner: string | null
  readonly source: 'task-api' | 'heygem-api'
  readonly audio: { readonly hash: string; readonly ext: string }
  readonly video: { readonly hash: string; readonly ext: string }
  /** `Idempotency-Key` header or `request_id` field: a repeat returns the same task. */
  readonly requestKey: string | null
  /** A checked `webhook_url` (gateway/webhooks/url-guard.ts), told of the task's end. */
  readonly webhookUrl?: string | null
}

export interface Submitted extends TaskView {
  /** An earlier submit with the same request key: nothing new was created. */
  readonly repeated: boolean
  /** Answered from an identical finished task: no GPU work. */
  readonly cacheHit: boolean
}

/** No options exist yet; identical submits compare this. */
const NO_OPTIONS = '{}'

export class TaskActions {
  readonly #d: TaskActionsDeps

  constructor(deps: TaskActionsDeps) {
    this.#d = deps
  }

  async submit(input: SubmitInput): Promise<Submitted> {
    const { store, lifecycle, dispatcher, views, log, now } = this.#d
    const repeat = this.#repeated(input)
    if (repeat) return repeat
    // A full disk takes no new task (a repeat above writes nothing and is answered).
    this.#d.pool.assertRoom()
    const audio = await this.#inputFile(input.audio, '音频')
    const video = await this.#inputFile(input.video, '视频')
    const cached = store.doneWithInputs(audio.hash, video.hash, NO_OPTIONS)
    const cachedResult = cached?.result_hash ?? null
    const hit =
      cached && cachedResult !== null && (await this.#d.pool.has(cachedResult)) ? cached : null
    // From here to the insert nothing awaits, so two submits with one key cannot both get past
    // this check: the second finds the first's row.
    const raced = this.#repeated(input)
    if (raced) return raced
    const at = now()
    const task: NewTask = {
      id: randomUUID(),
      owner: input.owner,
      source: input.source,
      type: DEFAULT_TASK_TYPE,
      audio,
      video,
      options: {},
      expiresAt: at + this.#d.queueTtlMs,
      requestKey: input.requestKey,
      // A new task is last in the queue: its estimate is the queue's (kept for estimate quality).
      ...(hit ? {} : { estimatedStartS: views.queue().etaSeconds }),
      webhookUrl: input.webhookUrl ?? null,
    }
    if (hit) {
      const row = lifecycle.cacheHit(task, hit)
      log.info({ taskId: row.id, from: hit.id }, 'task answered from an identical finished one')
      return { ...views.view(row), repeated: false, cacheHit: true }
    }
    const row = lifecycle.submit(task)
    const view = views.view(row)
    log.info(
      {
        taskId: row.id,
        type: row.type,
        position: view.position,
        gpusOnline: view.gpusOnline,
        etaSeconds: view.etaSeconds,
      },
      'task queued',
    )
    dispatcher.offer(row, 'submitted')
    return { ...view, repeated: false, cacheHit: false }
  }

  /** The task an earlier submit with the same key made; a key reused for other files is a 409. */
  #repeated(input: SubmitInput): Submitted | null {
    if (input.requestKey === null) return null
    const earlier = this.#d.store.byRequestKey(input.owner, input.requestKey)
    if (!earlier) return null
    if (earlier.audio_hash !== input.audio.hash || earlier.video_hash !== input.video.hash) {
      throw appError('IDEMPOTENCY_CONFLICT')
    }
    return { ...this.#d.views.view(earlier), repeated: true, cacheHit: false }
  }

  /** Cancel a queued or running task; the bridge stops following it. */
  cancel(taskId: string, by: string): TaskView {
    const { lifecycle, dispatcher, views, log } = this.#d
    const moved = lifecycle.cancel(taskId, by)
    if (!moved) {
      const row = views.get(taskId)
      throw appError('TASK_NOT_CANCELLABLE', { params: { state: stateWord(row.state) } })
    }
    const { before } = moved
    if (before.gpu_id !== null)
      dispatcher.cancelOnGpu({ gpuId: before.gpu_id, taskId, attempt: before.attempt, reason: by })
    log.info({ taskId, gpuId: before.gpu_id, was: before.state, by }, 'task cancelled')
    return views.view(views.get(taskId))
  }

  /** Run a failed task again as a new attempt. */
  retry(taskId: string): TaskView {
    const { lifecycle, dispatcher, views, log } = this.#d
    const moved = lifecycle.retry(taskId, this.#d.queueTtlMs)
    if (!moved?.after) {
      const row = views.get(taskId)
      throw appError('TASK_NOT_RETRYABLE', { params: { state: stateWord(row.state) } })
    }
    const row = moved.after
    log.info({ taskId, attempt: row.attempt }, 'task retried by its owner')
    dispatcher.offer(row, 'manual retry')
    return views.view(row)
  }

  async #inputFile(ref: { hash: string; ext: string }, what: string): Promise<FileRef> {
    const { pool, now } = this.#d
    const stored = pool.get(ref.hash)
    if (!stored || !(await pool.has(ref.hash))) {
      throw appError('FILE_NOT_FOUND', {
        params: { what, hash: ref.hash },
        details: { hash: ref.hash },
      })
    }
    pool.touch(ref.hash, now())
    return { hash: stored.hash, ext: ref.ext, size: stored.size }
  }
}

function stateWord(state: string): string {
  const words: Record<string, string> = {
    queued: '在排队',
    processing: '在处理中',
    done: '完成',
    error: '失败',
    cancelled: '取消',
    expired: '过期',
  }
  return words[state] ?? state
}
