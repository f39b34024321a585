/**
 * How good past start estimates were: each task's start as estimated at submit (`est_start_s`)
 * against its first claim (`rc_started_at`), both in seconds after its submit on the relay clock.
 * `error_s` is actual minus estimated (positive: it started later than said); the median error is
 * of their sizes over the newest measured starts. Read by index (tasks_by_measured_start).
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import { median } from './run-estimate.js'

export interface EstimateSample {
  readonly task_id: string
  readonly estimated_start_s: number
  readonly actual_start_s: number
  readonly error_s: number
}

export interface EstimateQuality {
  /** Tasks whose estimated and actual start are both known. */
  readonly samples: number
  /** Median of |error_s| over the newest MEDIAN_WINDOW of them; null before any. */
  readonly median_error_s: number | null
  /** The newest RECENT_SHOWN, newest first. */
  readonly recent: readonly EstimateSample[]
}

export const MEDIAN_WINDOW = 200
export const RECENT_SHOWN = 20

const MEASURED = 'rc_started_at IS NOT NULL AND est_start_s IS NOT NULL'

export class EstimateAccuracy {
  readonly #count: Statement<[], { n: number }>
  readonly #newest: Statement<
    [number],
    { id: string; est_start_s: number; started_after_ms: number }
  >

  constructor(db: Db) {
    this.#count = db.prepare(`SELECT COUNT(*) AS n FROM tasks WHERE ${MEASURED}`)
    this.#newest = db.prepare(
      `SELECT id, est_start_s, rc_started_at - COALESCE(rc_created_at, created_at) AS started_after_ms
       FROM tasks WHERE ${MEASURED} ORDER BY rc_started_at DESC LIMIT ?`,
    )
  }

  quality(): EstimateQuality {
    const rows = this.#newest.all(MEDIAN_WINDOW).map((r): EstimateSample => {
      const actual = Math.max(0, Math.round(r.started_after_ms / 100) / 10)
      return {
        task_id: r.id,
        estimated_start_s: r.est_start_s,
        actual_start_s: actual,
        error_s: Math.round((actual - r.est_start_s) * 10) / 10,
      }
    })
    return {
      samples: this.#count.get()?.n ?? 0,
      median_error_s: median(rows.map((r) => Math.abs(r.error_s))),
      recent: rows.slice(0, RECENT_SHOWN),
    }
  }
}
