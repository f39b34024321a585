/**
 * The fake run_server's in-memory job queue: FIFO, exactly one job running at a time, the next
 * starting the moment the previous one ends. Progress is read from the clock on each look; a timer
 * only moves the queue on when a job ends, so the queue advances even when nobody polls.
 */
import { randomBytes } from 'node:crypto'
import { runLengthMs, type DescribedJob, type JobFault } from './run-server-progress.js'

export interface FakeJob {
  readonly taskId: string
  readonly audioHash: string
  readonly videoHash: string
}

interface JobRecord extends FakeJob {
  startedAt: number | null
  endsAt: number | null
  ended: boolean
  fault: JobFault | null
}

export interface FakeJobQueueOptions {
  readonly durationMs: number
  /** Milliseconds, monotonic. */
  readonly clock: () => number
  /** The fault armed for the next job to start, if any (consumed). */
  readonly takeFault: () => JobFault | null
  readonly onStart: (job: FakeJob) => void
  readonly onEnd: (job: FakeJob) => void
}

export interface QueueCounts {
  readonly queued: number
  readonly processing: number
  readonly current_task_id: string | null
}

export class FakeJobQueue {
  readonly #options: FakeJobQueueOptions
  readonly #jobs = new Map<string, JobRecord>()
  readonly #waiting: JobRecord[] = []
  #current: JobRecord | null = null
  #timer: NodeJS.Timeout | null = null
  #closed = false

  constructor(options: FakeJobQueueOptions) {
    this.#options = options
  }

  /** Accept a job; it starts at once if the GPU is idle, else waits its turn. */
  submit(audioHash: string, videoHash: string): FakeJob {
    const job: JobRecord = {
      // The service's own id: 32 hex characters, not a UUID.
      taskId: randomBytes(16).toString('hex'),
      audioHash,
      videoHash,
      startedAt: null,
      endsAt: null,
      ended: false,
      fault: null,
    }
    this.#jobs.set(job.taskId, job)
    this.#waiting.push(job)
    this.#settle()
    return job
  }

  /** A job as `/progress` describes it, or undefined for an id this process never issued. */
  describe(taskId: string): (DescribedJob & FakeJob) | undefined {
    this.#settle()
    const job = this.#jobs.get(taskId)
    if (!job) return undefined
    const base = { taskId, audioHash: job.audioHash, videoHash: job.videoHash, fault: job.fault }
    if (job.ended) return { ...base, view: { phase: 'ended' } }
    if (job.startedAt === null) {
      return { ...base, view: { phase: 'queued', position: this.#waiting.indexOf(job) + 1 } }
    }
    const elapsedMs = this.#options.clock() - job.startedAt
    return { ...base, view: { phase: 'running', elapsedMs } }
  }

  counts(): QueueCounts {
    this.#settle()
    return {
      queued: this.#waiting.length,
      processing: this.#current === null ? 0 : 1,
      current_task_id: this.#current?.taskId ?? null,
    }
  }

  /** Stop moving the queue; the jobs are forgotten with this object. */
  close(): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
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
      let job = this.#current
      if (job === null) {
        const next = this.#waiting.shift()
        if (next === undefined) break
        job = this.#start(next, at)
      }
      const endsAt = job.endsAt ?? Number.POSITIVE_INFINITY
      if (now < endsAt) break
      job.ended = true
      this.#current = null
      at = endsAt
      this.#options.onEnd(job)
    }
    this.#schedule(now)
  }

  #start(job: JobRecord, at: number): JobRecord {
    job.startedAt = at
    job.fault = this.#options.takeFault()
    job.endsAt = at + runLengthMs(job.fault, this.#options.durationMs)
    this.#current = job
    this.#options.onStart(job)
    return job
  }

  #schedule(now: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const endsAt = this.#current?.endsAt
    if (endsAt === undefined || endsAt === null || !Number.isFinite(endsAt)) return
    this.#timer = setTimeout(() => this.#settle(), Math.max(1, Math.ceil(endsAt - now)))
    this.#timer.unref()
  }
}
