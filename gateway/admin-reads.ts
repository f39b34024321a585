/**
 * The dashboard's reads of the task rows (nothing here writes): history filtered by owner, state
 * and submit time, newest first and paged by a `seq` cursor; the queue and what runs, in order;
 * tasks done today per GPU. Each filter combination is its own statement (prepared on first use,
 * then reused), so SQLite can use an index for it instead of scanning the table: `tasks_by_owner`,
 * `tasks_by_state_seq`, `tasks_by_created` (the issue-10 dashboard migration) or the primary key.
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import type { TaskRow } from './task-store.js'
import type { TaskState } from '../protocol/index.js'

export interface HistoryFilter {
  readonly owner?: string
  readonly state?: TaskState
  /** Submitted at or after (wall-clock ms). */
  readonly from?: number
  /** Submitted before (wall-clock ms). */
  readonly to?: number
  /** Only tasks older than this `seq` (the cursor of the next page). */
  readonly before?: number
  readonly limit: number
}

export interface HistoryPage {
  readonly rows: readonly TaskRow[]
  /** The cursor for the next (older) page; null on the last one. */
  readonly nextBefore: number | null
}

type Param = string | number
const FILTERS = ['owner', 'state', 'from', 'to', 'before'] as const
const CONDITIONS: Readonly<Record<(typeof FILTERS)[number], string>> = {
  owner: 'owner = ?',
  state: 'state = ?',
  from: 'created_at >= ?',
  to: 'created_at < ?',
  before: 'seq < ?',
}

export class AdminReads {
  readonly #db: Db
  readonly #history = new Map<string, Statement<Param[], TaskRow>>()
  readonly #inState: Statement<[string, number], TaskRow>
  readonly #countState: Statement<[string], { n: number }>
  readonly #doneSince: Statement<[number], { gpu_id: string | null; n: number }>

  constructor(db: Db) {
    this.#db = db
    this.#inState = db.prepare('SELECT * FROM tasks WHERE state = ? ORDER BY seq LIMIT ?')
    this.#countState = db.prepare('SELECT COUNT(*) AS n FROM tasks WHERE state = ?')
    this.#doneSince = db.prepare(
      `SELECT gpu_id, COUNT(*) AS n FROM tasks WHERE state = 'done' AND finished_at >= ?
       GROUP BY gpu_id`,
    )
  }

  /** One page of tasks matching `filter`, newest first. */
  history(filter: HistoryFilter): HistoryPage {
    const used = FILTERS.filter((name) => filter[name] !== undefined)
    const params: Param[] = used.map((name) => filter[name] ?? '')
    // One more than asked for: whether there is a next page, without a count over the table.
    const rows = this.#historyStatement(used).all(...params, filter.limit + 1)
    const page = rows.slice(0, filter.limit)
    const last = page.at(-1)
    return { rows: page, nextBefore: rows.length > filter.limit && last ? last.seq : null }
  }

  /** The SQL a filter combination runs (tests read its query plan). */
  historySql(used: readonly (typeof FILTERS)[number][]): string {
    const where = used.length === 0 ? '' : `WHERE ${used.map((n) => CONDITIONS[n]).join(' AND ')}`
    // Without statistics SQLite prefers walking the primary key backwards for ORDER BY … LIMIT,
    // which scans the table when the range is old: a date range alone goes by its index.
    const byDate =
      (used.includes('from') || used.includes('to')) &&
      !used.includes('owner') &&
      !used.includes('state')
    const source = byDate ? 'tasks INDEXED BY tasks_by_created' : 'tasks'
    return `SELECT * FROM ${source} ${where} ORDER BY seq DESC LIMIT ?`
  }

  /** Tasks in `state` in submit order, at most `limit`. */
  inState(state: 'queued' | 'processing', limit: number): TaskRow[] {
    return this.#inState.all(state, limit)
  }

  countInState(state: TaskState): number {
    return this.#countState.get(state)?.n ?? 0
  }

  /** Tasks done since `since` (wall-clock ms), per GPU id. */
  doneSince(since: number): ReadonlyMap<string, number> {
    const counts = new Map<string, number>()
    for (const row of this.#doneSince.all(since)) {
      if (row.gpu_id !== null) counts.set(row.gpu_id, row.n)
    }
    return counts
  }

  #historyStatement(used: readonly (typeof FILTERS)[number][]): Statement<Param[], TaskRow> {
    const key = used.join(',')
    let statement = this.#history.get(key)
    if (!statement) {
      statement = this.#db.prepare<Param[], TaskRow>(this.historySql(used))
      this.#history.set(key, statement)
    }
    return statement
  }
}

export const HISTORY_FILTERS = FILTERS
export type HistoryFilterName = (typeof FILTERS)[number]
