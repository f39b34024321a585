/**
 * The four clocks (docs/design.md §4), run from the gateway's tick: queue TTL (→ expired), execution
 * timeout and stall timeout (→ a new attempt while attempts remain, else error; the bridge is told
 * to stop following the old one), and retention (finished tasks, their results and unreferenced
 * files purged). Task durations are measured on the relay clock
 * (relay-clock.ts), so a wall-clock step or the gateway's own downtime neither expires, re-runs
 * nor fails anything.
 */
import type { Logger } from 'pino'
import type { Dispatcher } from './dispatcher.js'
import type { FilePool } from './file-pool.js'
import type { TaskLifecycle } from './task-lifecycle.js'
import type { TaskOutbox } from './task-outbox.js'
import type { TaskRow, TaskStore } from './task-store.js'
import { humanDuration } from './estimates.js'
import type { HandOvers } from './hand-overs.js'

export interface ClockSettings {
  readonly execTimeoutMs: number
  readonly stallTimeoutMs: number
  readonly retentionMs: number
}

export interface ClocksDeps extends ClockSettings {
  readonly store: TaskStore
  readonly lifecycle: TaskLifecycle
  /** The task event outbox: the purge marks of long-gone tasks are dropped with retention. */
  readonly outbox: TaskOutbox
  readonly pool: FilePool
  readonly dispatcher: Dispatcher
  readonly log: Logger
  /** Wall-clock ms: the display times the transitions record, and the file pool's use times. */
  readonly now: () => number
  /** The relay clock (relay-clock.ts): what every duration here is measured on. */
  readonly relay: () => number
  /** Result hand-overs under way: their attempts' execution and stall clocks hold. */
  readonly handOvers: HandOvers
}

/** Retention runs at most this often: it scans, the others are indexed lookups. */
const RETENTION_EVERY_MS = 60_000

export class Clocks {
  readonly #d: ClocksDeps
  #lastRetention = -Infinity
  #sweeping = false

  constructor(deps: ClocksDeps) {
    this.#d = deps
    deps.lifecycle.restartStallClocks()
  }

  tick(): void {
    this.#expire()
    this.#timeouts()
    const relay = this.#d.relay()
    if (relay - this.#lastRetention >= Math.min(RETENTION_EVERY_MS, this.#d.retentionMs)) {
      this.#lastRetention = relay
      void this.#retention(this.#d.now())
    }
  }

  #expire(): void {
    const { store, lifecycle, log } = this.#d
    for (const id of store.dueToExpire()) {
      if (lifecycle.expire(id)) log.info({ taskId: id }, 'task expired')
    }
  }

  #timeouts(): void {
    const { store, execTimeoutMs, stallTimeoutMs, handOvers } = this.#d
    handOvers.prune(stallTimeoutMs)
    // The GPU's work is done once its result is stored, or while it is being handed over (or
    // tried again after a refusal): no clock may turn that into a new GPU run.
    const handingOver = (task: TaskRow): boolean =>
      task.stored_result_attempt === task.attempt ||
      handOvers.active(task.id, task.attempt, stallTimeoutMs)
    const overrun = store.overrunning(execTimeoutMs).filter((t) => !handingOver(t))
    for (const task of overrun) {
      this.#giveUp(task, `执行超时（超过${humanDuration(execTimeoutMs / 1000)}）`, 'exec-timeout')
    }
    const seen = new Set(overrun.map((t) => t.id))
    for (const task of store.stalled(stallTimeoutMs)) {
      if (seen.has(task.id) || handingOver(task)) continue
      const quiet = humanDuration(stallTimeoutMs / 1000)
      this.#giveUp(task, `任务进度${quiet}没有变化（GPU 疑似卡住）`, 'stall-timeout')
    }
  }

  /** A timed-out attempt: the bridge stops following it, the task is retried or fails. */
  #giveUp(task: TaskRow, reason: string, note: string): void {
    const { dispatcher, log } = this.#d
    log.warn({ taskId: task.id, gpuId: task.gpu_id, attempt: task.attempt, note }, 'task timed out')
    if (task.gpu_id !== null)
      dispatcher.cancelOnGpu({
        gpuId: task.gpu_id,
        taskId: task.id,
        attempt: task.attempt,
        reason: note,
      })
    dispatcher.retryOrFail(task, reason, note)
  }

  async #retention(now: number): Promise<void> {
    if (this.#sweeping) return
    this.#sweeping = true
    const { store, lifecycle, pool, log, retentionMs } = this.#d
    try {
      const old = store.expiredRetention(retentionMs)
      for (const task of old) lifecycle.purge(task.id)
      this.#d.outbox.forgetPurgedBefore(this.#d.relay() - retentionMs)
      // The pool records its files' use in wall-clock ms (a step forward can only take files no
      // remaining task refers to a little early; a step back keeps them longer).
      const files = await pool.sweep(now - retentionMs)
      if (old.length > 0 || files > 0) {
        log.info({ tasks: old.length, files }, 'retention: purged finished tasks and files')
      }
    } catch (err) {
      log.error({ err }, 'retention sweep failed')
    } finally {
      this.#sweeping = false
    }
  }
}
