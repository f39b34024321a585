/**
 * The inbox's schema as a numbered list of migrations, applied in order and recorded in
 * `PRAGMA user_version` (lib/sqlite-migrate.ts, like every database here). Files written before the list
 * existed have user_version 0 and the tables already: the first step accepts them as they are.
 */
import type Database from 'better-sqlite3'
import { migrate, type MigrationStep } from '../lib/sqlite-migrate.js'

const MIGRATIONS: readonly MigrationStep[] = [
  // The inbox and its meta (the connection epoch). `submit_started` came later than the table:
  // a file from then lacks it.
  (db) => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS inbox (
        task_id TEXT PRIMARY KEY,
        attempt INTEGER NOT NULL,
        ord INTEGER NOT NULL,
        phase TEXT NOT NULL,
        message TEXT NOT NULL,
        service_task_id TEXT,
        final_event TEXT,
        next_seq INTEGER NOT NULL DEFAULT 1,
        not_before INTEGER NOT NULL DEFAULT 0,
        received_at INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    `)
    const columns = db.prepare<[], { name: string }>('PRAGMA table_info(inbox)').all()
    if (!columns.some((c) => c.name === 'submit_started')) {
      db.exec('ALTER TABLE inbox ADD COLUMN submit_started INTEGER NOT NULL DEFAULT 0')
    }
  },
  // Every bridge holds every offer of its types (docs/design.md §3.2), thousands of rows while a
  // backlog waits: the next claim, the busy count and each phase are read through this index,
  // never by a scan of the table.
  `CREATE INDEX IF NOT EXISTS inbox_by_phase ON inbox (phase, ord);`,
]

export function migrateInbox(db: Database.Database): void {
  migrate(db, MIGRATIONS)
}
