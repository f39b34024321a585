/**
 * Task figures read at scrape time: how many tasks are in each state and when the oldest queued
 * one was submitted. Reads only (task-lifecycle.ts writes the rows), one prepared statement each,
 * answered from the `tasks_by_state` index.
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from '../db.js'
import { TaskState } from '../../protocol/index.js'

export type StateCounts = Readonly<Record<TaskState, number>>

export class TaskFigures {
  readonly #byState: Statement<[], { state: string; n: number }>
  readonly #oldestQueued: Statement<[], { at: number | null }>

  constructor(db: Db) {
    this.#byState = db.prepare('SELECT state, COUNT(*) AS n FROM tasks GROUP BY state')
    this.#oldestQueued = db.prepare(
      "SELECT MIN(created_at) AS at FROM tasks WHERE state = 'queued'",
    )
  }

  /** Every state, zero included (a series that vanishes reads as "no data", not 0). */
  byState(): StateCounts {
    const counts = Object.fromEntries(TaskState.options.map((s) => [s, 0])) as Record<
      TaskState,
      number
    >
    for (const row of this.#byState.all()) {
      const state = TaskState.safeParse(row.state)
      if (state.success) counts[state.data] = row.n
    }
    return counts
  }

  /** Wall-clock ms of the oldest queued task's submit; null when none is queued. */
  oldestQueuedAt(): number | null {
    return this.#oldestQueued.get()?.at ?? null
  }
}
