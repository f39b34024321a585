/**
 * run_server's in-memory task table (`_tasks`) and its one GPU slot (`MAX_CONCURRENT = 1`): jobs run
 * in submit order, one at a time, the next starting the moment the previous one ends. Stages are
 * read from the clock on each look; a timer moves the queue on when a job ends, even if nobody asks.
 */
import { randomBytes } from 'node:crypto'
import {
  doneStage,
  errorStage,
  MAX_CONCURRENT,
  queuedStage,
  runLengthMs,
  runningStage,
  type JobFault,
  type ProgressView,
  type QueueInfo,
  type Stage,
  type TaskStatus,
} from './run-server-progress.js'

export interface TaskRecord {
  readonly taskId: string
  readonly audioHash: string
  readonly videoHash: string
  /** Where a done job's result is written; for a cache hit, the cached file. */
  readonly resultPath: string
  /** `md5(audio_video)[:16]` of a submit by hash (its result is copied there); null for legacy. */
  readonly cacheKey: string | null
  readonly cached: boolean
  readonly createdAt: number
  startedAt: number | null
  endsAt: number | null
  finishedAt: number | null
  state: 'queued' | 'running' | 'done' | 'error'
  fault: JobFault | null
  written: Promise<void> | null // settles once a done job's result file is on disk
}

export interface NewJob {
  /** Decided by the table unless given (the legacy upload names its folder with it first). */
  readonly taskId?: string
  readonly audioHash: string
  readonly videoHash: string
  readonly cacheKey: string | null
  readonly resultPathOf: (taskId: string) => string // where the result of this task goes
}

export interface RunServerTasksOptions {
  readonly durationMs: number
  readonly clock: () => number // ms, monotonic
  /** The fault armed for the next job to start, if any (consumed). */
  readonly takeFault: () => JobFault | null
  readonly onStart: (task: TaskRecord) => void
  /** A job ended; for a done one, returns the promise of its result file. */
  readonly onEnd: (task: TaskRecord) => Promise<void> | null
}

/** 16 hex characters, as `uuid4().hex[:16]`. */
export function newTaskId(): string {
  return randomBytes(8).toString('hex')
}

export class RunServerTasks {
  readonly #options: RunServerTasksOptions
  readonly #tasks = new Map<string, TaskRecord>()
  readonly #waiting: TaskRecord[] = []
  readonly #epochBase = Date.now()
  readonly #clockBase: number
  #current: TaskRecord | null = null
  #timer: NodeJS.Timeout | null = null
  #closed = false

  constructor(options: RunServerTasksOptions) {
    this.#options = options
    this.#clockBase = options.clock()
  }

  /** Accept a job; it starts at once when the slot is free, else waits its turn. */
  submit(job: NewJob): TaskRecord {
    const taskId = job.taskId ?? newTaskId()
    const task: TaskRecord = {
      taskId,
      audioHash: job.audioHash,
      videoHash: job.videoHash,
      resultPath: job.resultPathOf(taskId),
      cacheKey: job.cacheKey,
      cached: false,
      createdAt: this.#options.clock(),
      startedAt: null,
      endsAt: null,
      finishedAt: null,
      state: 'queued',
      fault: null,
      written: null,
    }
    this.#tasks.set(taskId, task)
    this.#waiting.push(task)
    this.#settle()
    return task
  }

  /** A cache hit: a task under the cache key, done at once (replacing one of that id). */
  addCached(
    taskId: string,
    job: Pick<NewJob, 'audioHash' | 'videoHash' | 'cacheKey'>,
    resultPath: string,
  ): TaskRecord {
    const now = this.#options.clock()
    const task: TaskRecord = {
      taskId,
      audioHash: job.audioHash,
      videoHash: job.videoHash,
      cacheKey: job.cacheKey,
      resultPath,
      cached: true,
      createdAt: now,
      startedAt: now,
      endsAt: now,
      finishedAt: now,
      state: 'done',
      fault: null,
      written: Promise.resolve(),
    }
    this.#tasks.set(taskId, task)
    return task
  }

  get(taskId: string): TaskRecord | undefined {
    this.#settle()
    return this.#tasks.get(taskId)
  }

  /** `_build_progress_data(task_id)`, or undefined for an id this process does not hold. */
  view(taskId: string): ProgressView | undefined {
    const task = this.get(taskId)
    if (!task) return undefined
    const position = this.#position(task)
    return {
      task_id: task.taskId,
      ...this.#stage(task, position),
      queue_position: position,
      queue: this.queueInfo(),
      created_at: this.#epoch(task.createdAt),
      started_at: this.#epoch(task.startedAt),
      finished_at: this.#epoch(task.finishedAt),
      error: task.state === 'error' && task.fault?.kind === 'fail' ? task.fault.reason : '',
    }
  }

  queueInfo(): QueueInfo {
    this.#settle()
    return {
      total_tasks: this.#tasks.size,
      processing: this.#current === null ? 0 : 1,
      queued: this.#waiting.length,
      max_concurrent: MAX_CONCURRENT,
    }
  }

  /** `/queue`'s `tasks`: every task, in the order it was first added. */
  listing(): { task_id: string; status: TaskStatus; progress: number; created_at: number }[] {
    this.#settle()
    return [...this.#tasks.values()].map((task) => {
      const { status, progress } = this.#stage(task, this.#position(task))
      return { task_id: task.taskId, status, progress, created_at: this.#epoch(task.createdAt) }
    })
  }

  /** Stop moving the queue; the tasks are forgotten with this object. */
  close(): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
  }

  /** 1 for the next job to run; 0 unless queued. */
  #position(task: TaskRecord): number {
    return task.state === 'queued' ? this.#waiting.indexOf(task) + 1 : 0
  }

  #stage(task: TaskRecord, position: number): Stage {
    const now = this.#options.clock()
    switch (task.state) {
      case 'queued':
        return queuedStage(now - task.createdAt, position)
      case 'running':
        return runningStage(now - (task.startedAt ?? now), this.#options.durationMs, task.fault)
      case 'done':
        return doneStage(task.cached)
      case 'error':
        return errorStage(task.fault?.kind === 'fail' ? task.fault.reason : '')
    }
  }

  /** Epoch seconds (a float, as `time.time()`), 0 when unset. */
  #epoch(at: number | null): number {
    return at === null ? 0 : (this.#epochBase + (at - this.#clockBase)) / 1000
  }

  /**
   * End every job whose time is up and start the next at the moment the previous ended, so the
   * queue's history does not depend on when anyone looked.
   */
  #settle(): void {
    if (this.#closed) return
    const now = this.#options.clock()
    let at = now
    for (;;) {
      let task = this.#current
      if (task === null) {
        const next = this.#waiting.shift()
        if (next === undefined) break
        task = this.#start(next, at)
      }
      const endsAt = task.endsAt ?? Number.POSITIVE_INFINITY
      if (now < endsAt) break
      task.state = task.fault?.kind === 'fail' ? 'error' : 'done'
      task.finishedAt = endsAt
      this.#current = null
      at = endsAt
      task.written = this.#options.onEnd(task)
    }
    this.#schedule(now)
  }

  #start(task: TaskRecord, at: number): TaskRecord {
    task.state = 'running'
    task.startedAt = at
    task.fault = this.#options.takeFault()
    task.endsAt = at + runLengthMs(task.fault, this.#options.durationMs)
    this.#current = task
    this.#options.onStart(task)
    return task
  }

  #schedule(now: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const endsAt = this.#current?.endsAt
    if (endsAt === undefined || endsAt === null || !Number.isFinite(endsAt)) return
    this.#timer = setTimeout(
      () => {
        this.#settle()
      },
      Math.max(1, Math.ceil(endsAt - now)),
    )
    this.#timer.unref()
  }
}
