/** The inbox's SQL (inbox.ts), prepared once when it opens and reused for its life. */
import type Database from 'better-sqlite3'
import type { Statement } from 'better-sqlite3'

export type InboxPhase = 'received' | 'claiming' | 'running' | 'finished'

export interface RawRow {
  task_id: string
  attempt: number
  ord: number
  phase: InboxPhase
  message: string
  service_task_id: string | null
  submit_started: number
  final_event: string | null
  not_before: number
}

export interface HoldingRow {
  task_id: string
  attempt: number
  phase: InboxPhase
  service_task_id: string | null
}

/** The statements of the inbox, prepared once when it opens (each is reused for its life). */
export interface Statements {
  readonly epoch: Statement<[], { value: number }>
  readonly setEpoch: Statement<[number]>
  readonly get: Statement<[string], RawRow>
  readonly insert: Statement<[string, number, number, string, number]>
  readonly all: Statement<[], RawRow>
  readonly inPhase: Statement<[InboxPhase], RawRow>
  readonly nextToClaim: Statement<[number, number], RawRow>
  readonly busy: Statement<[], { n: number }>
  readonly holding: Statement<[number], HoldingRow>
  readonly seq: Statement<[string, number], { next_seq: number }>
  readonly setSeq: Statement<[number, string, number]>
  readonly setPhase: Statement<[InboxPhase, number, string, number]>
  readonly submitStarted: Statement<[string, number]>
  readonly serviceTaskId: Statement<[string | null, string, number]>
  readonly finish: Statement<[string, string, number]>
  readonly remove: Statement<[string, number]>
  readonly removeTask: Statement<[string]>
}

export function prepareInbox(db: Database.Database): Statements {
  return {
    epoch: db.prepare(`SELECT value FROM meta WHERE key = 'epoch'`),
    setEpoch: db.prepare(`INSERT OR REPLACE INTO meta (key, value) VALUES ('epoch', ?)`),
    get: db.prepare('SELECT * FROM inbox WHERE task_id = ?'),
    insert: db.prepare(
      `INSERT OR REPLACE INTO inbox (task_id, attempt, ord, phase, message, received_at)
       VALUES (?, ?, ?, 'received', ?, ?)`,
    ),
    all: db.prepare('SELECT * FROM inbox ORDER BY ord'),
    inPhase: db.prepare('SELECT * FROM inbox WHERE phase = ? ORDER BY ord'),
    nextToClaim: db.prepare(
      `SELECT * FROM inbox WHERE phase = 'received' AND (not_before <= ? OR not_before > ?)
       ORDER BY ord LIMIT 1`,
    ),
    busy: db.prepare(`SELECT COUNT(*) AS n FROM inbox WHERE phase IN ('claiming', 'running')`),
    holding: db.prepare(
      `SELECT task_id, attempt, phase, service_task_id FROM inbox
       ORDER BY phase = 'received', ord LIMIT ?`,
    ),
    seq: db.prepare('SELECT next_seq FROM inbox WHERE task_id = ? AND attempt = ?'),
    setSeq: db.prepare('UPDATE inbox SET next_seq = ? WHERE task_id = ? AND attempt = ?'),
    setPhase: db.prepare(
      'UPDATE inbox SET phase = ?, not_before = ? WHERE task_id = ? AND attempt = ?',
    ),
    submitStarted: db.prepare(
      'UPDATE inbox SET submit_started = 1 WHERE task_id = ? AND attempt = ?',
    ),
    serviceTaskId: db.prepare(
      'UPDATE inbox SET service_task_id = ? WHERE task_id = ? AND attempt = ?',
    ),
    finish: db.prepare(
      `UPDATE inbox SET phase = 'finished', final_event = ? WHERE task_id = ? AND attempt = ?`,
    ),
    remove: db.prepare('DELETE FROM inbox WHERE task_id = ? AND attempt = ?'),
    removeTask: db.prepare('DELETE FROM inbox WHERE task_id = ?'),
  }
}
