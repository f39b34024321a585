/** The SQLite file behind the broker's persistence: schema, and statements prepared once. */
import type Database from 'better-sqlite3'
import { openWalDatabase } from '../lib/sqlite-open.js'

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, packet BLOB NOT NULL);
  CREATE TABLE IF NOT EXISTS subscriptions (
    client_id TEXT NOT NULL, topic TEXT NOT NULL, qos INTEGER NOT NULL,
    rh INTEGER, rap INTEGER, nl INTEGER, sub_id INTEGER,
    PRIMARY KEY (client_id, topic)
  );
  CREATE TABLE IF NOT EXISTS outgoing (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id TEXT NOT NULL, broker_id TEXT, broker_counter INTEGER, message_id INTEGER,
    packet BLOB NOT NULL
  );
  CREATE INDEX IF NOT EXISTS outgoing_by_client ON outgoing (client_id, seq);
  CREATE INDEX IF NOT EXISTS outgoing_by_origin ON outgoing (client_id, broker_id, broker_counter);
  CREATE INDEX IF NOT EXISTS outgoing_by_message_id ON outgoing (client_id, message_id);
  CREATE TABLE IF NOT EXISTS incoming (
    client_id TEXT NOT NULL, message_id INTEGER NOT NULL, packet BLOB NOT NULL,
    PRIMARY KEY (client_id, message_id)
  );
  CREATE TABLE IF NOT EXISTS wills (
    client_id TEXT PRIMARY KEY, broker_id TEXT NOT NULL, packet BLOB NOT NULL
  );
`

export class SqliteStore {
  readonly db: Database.Database
  readonly #statements = new Map<string, Database.Statement>()

  constructor(path: string) {
    // WAL + NORMAL: a commit survives the process being killed; only an OS crash can lose the
    // last ones. FULL would fsync every QoS 1 message. On a full disk it opens all the same
    // (lib/sqlite-open.ts), and the broker refuses what it cannot store.
    this.db = openWalDatabase(path, ['synchronous = NORMAL']).db
    this.db.exec(SCHEMA)
  }

  /** A statement prepared on first use and reused: this is the hot path of every message. */
  sql<P extends unknown[] = unknown[], R = unknown>(text: string): Database.Statement<P, R> {
    let statement = this.#statements.get(text)
    if (!statement) {
      statement = this.db.prepare(text)
      this.#statements.set(text, statement)
    }
    // The cache is keyed by the SQL text, which fixes the parameter and row shapes.
    return statement as Database.Statement<P, R>
  }

  transaction(work: () => void): void {
    this.db.transaction(work)()
  }

  close(): void {
    this.db.close()
  }
}

/** Resolve with `work()`'s value, or reject with what it threw (never throw synchronously). */
export function settle<T>(work: () => T): Promise<T> {
  try {
    return Promise.resolve(work())
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)))
  }
}
