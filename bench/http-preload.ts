/**
 * Fast preload for bench/http.ts: with the gateway stopped, its tasks table is filled to `total`
 * rows by copying one task the real API made (new id, same inputs, owner and published
 * attempt, so a restarted gateway republishes nothing), in one transaction. Then, optionally,
 * every row is made `done` (the peer: the same rows all done).
 */
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import Database from 'better-sqlite3'

function open(dataDir: string): Database.Database {
  const db = new Database(join(dataDir, 'gateway.sqlite'))
  db.pragma('journal_mode = WAL')
  return db
}

/** Copies of task `templateId` until the table holds `total` rows; returns their ids. */
export function preloadTasks(dataDir: string, templateId: string, total: number): string[] {
  const db = open(dataDir)
  try {
    const columns = (db.pragma('table_info(tasks)') as { name: string }[])
      .map((c) => c.name)
      .filter((n) => n !== 'seq' && n !== 'id' && n !== 'request_key')
    const list = columns.join(', ')
    const copy = db.prepare(
      `INSERT INTO tasks (id, ${list}) SELECT ?, ${list} FROM tasks WHERE id = ?`,
    )
    const count = (db.prepare('SELECT count(*) AS n FROM tasks').get() as { n: number }).n
    const ids: string[] = []
    db.transaction(() => {
      for (let i = count; i < total; i += 1) {
        const id = randomUUID()
        copy.run(id, templateId)
        ids.push(id)
      }
    })()
    return ids
  } finally {
    db.close()
  }
}

/** Every task `done`, with its video as the result (the gateway stopped). */
export function markAllDone(dataDir: string): void {
  const db = open(dataDir)
  try {
    db.exec(`UPDATE tasks SET state = 'done', progress = 1, gpu_id = 'gpu-1',
      result_hash = video_hash, result_ext = video_ext, result_size = video_size,
      result_type = 'video/mp4', claimed_at = created_at, rc_claimed_at = rc_created_at,
      rc_started_at = rc_created_at, finished_at = created_at + 1000,
      rc_finished_at = rc_created_at + 1000`)
  } finally {
    db.close()
  }
}
