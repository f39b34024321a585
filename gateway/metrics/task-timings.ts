/**
 * Queue wait and run time of tasks, fed by the task event stream (task-outbox.ts): a task is
 * marked when it enters `queued` (submitted, requeued, retried), its wait is observed at its
 * claim, and its run time when it leaves `processing` for an end state (done, error, cancelled).
 * Marks are taken on a monotonic clock in this process, so a wall-clock step changes nothing; a
 * task that entered its state before this gateway started is not measured. Marks go when a task
 * moves on, so the maps hold at most the active tasks.
 */
import type { Histogram } from 'prom-client'
import type { TaskOutbox } from '../task-outbox.js'
import { isTerminal, type TaskEvent } from '../../protocol/index.js'

export interface TaskTimingsDeps {
  readonly outbox: Pick<TaskOutbox, 'subscribe'>
  readonly queueWait: Histogram
  /** Labelled by `state`, the end state. */
  readonly duration: Histogram<'state'>
  /** Monotonic ms. */
  readonly monotonic: () => number
}

export class TaskTimings {
  readonly #d: TaskTimingsDeps
  readonly #queuedAt = new Map<string, number>()
  readonly #claimedAt = new Map<string, number>()
  readonly #unsubscribe: () => void

  constructor(deps: TaskTimingsDeps) {
    this.#d = deps
    this.#unsubscribe = deps.outbox.subscribe((event) => {
      this.#onEvent(event)
    })
  }

  close(): void {
    this.#unsubscribe()
  }

  #onEvent(event: TaskEvent): void {
    const now = this.#d.monotonic()
    const { taskId } = event
    if (event.from === 'queued') {
      const since = this.#queuedAt.get(taskId)
      this.#queuedAt.delete(taskId)
      if (event.state === 'processing' && since !== undefined) {
        this.#d.queueWait.observe(seconds(now - since))
      }
    }
    if (event.from === 'processing' && event.state !== 'processing') {
      const since = this.#claimedAt.get(taskId)
      this.#claimedAt.delete(taskId)
      if (event.state !== null && isTerminal(event.state) && since !== undefined) {
        this.#d.duration.observe({ state: event.state }, seconds(now - since))
      }
    }
    if (event.state === 'queued' && event.from !== 'queued') this.#queuedAt.set(taskId, now)
    if (event.state === 'processing' && event.from !== 'processing') {
      this.#claimedAt.set(taskId, now)
    }
    if (event.state === null) {
      this.#queuedAt.delete(taskId)
      this.#claimedAt.delete(taskId)
    }
  }
}

const seconds = (ms: number): number => Math.max(0, ms) / 1000
