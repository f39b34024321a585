/**
 * The SQLite file behind the broker's persistence: its migrations (lib/sqlite-migrate.ts), and
 * every statement prepared once when the store opens (this is the hot path of every message).
 */
import type Database from 'better-sqlite3'
import type { Statement } from 'better-sqlite3'
import { migrate } from '../lib/sqlite-migrate.js'
import { openWalDatabase } from '../lib/sqlite-open.js'

/**
 * Numbered steps, applied in order under `PRAGMA user_version`; append only. The first keeps
 * `IF NOT EXISTS`: databases of earlier versions created these tables without recording a
 * version, and pass through it unchanged.
 */
const MIGRATIONS: readonly string[] = [
  `
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
  `,
]

export interface SubRow {
  client_id: string
  topic: string
  qos: number
  rh: number | null
  rap: number | null
  nl: number | null
  sub_id: number | null
}

type Id = string | null
type Counter = number | null

/** The statements of the persistence, by what they do. */
export interface BrokerStatements {
  readonly retainedDelete: Statement<[string]>
  readonly retainedPut: Statement<[string, Buffer]>
  readonly retainedAll: Statement<[], { topic: string; packet: Buffer }>
  readonly subscriptionsDurable: Statement<[], SubRow>
  readonly subscriptionPut: Statement<[SubRow]>
  readonly subscriptionDelete: Statement<[string, string]>
  readonly subscription: Statement<[string, string], SubRow>
  readonly subscriptionsOfClient: Statement<[string], SubRow>
  readonly subscriptionsDeleteClient: Statement<[string]>
  readonly subscribedClients: Statement<[], { n: number }>
  readonly clientsOfTopic: Statement<[string], { client_id: string }>
  readonly incomingPut: Statement<[string, number, Buffer]>
  readonly incomingGet: Statement<[string, number], { packet: Buffer }>
  readonly incomingDelete: Statement<[string, number]>
  readonly incomingDeleteClient: Statement<[string]>
  readonly willPut: Statement<[string, string, Buffer]>
  readonly will: Statement<[string], { packet: Buffer }>
  readonly willDelete: Statement<[string]>
  readonly willsAll: Statement<[], { broker_id: string; packet: Buffer }>
  readonly outgoingInsert: Statement<[string, Id, Counter, Buffer]>
  readonly outgoingByOrigin: Statement<[string, Id, Counter], { seq: number }>
  readonly outgoingSetMessageId: Statement<[number | null, number]>
  readonly outgoingByMessageId: Statement<
    [string, number],
    { seq: number; packet: Buffer; message_id: number }
  >
  readonly outgoingReplace: Statement<[Id, Counter, number | null, Buffer, number]>
  readonly outgoingDelete: Statement<[number]>
  readonly outgoingOfClient: Statement<[string], { packet: Buffer; message_id: number | null }>
}

function prepare(db: Database.Database): BrokerStatements {
  return {
    retainedDelete: db.prepare('DELETE FROM retained WHERE topic = ?'),
    retainedPut: db.prepare(
      `INSERT INTO retained (topic, packet) VALUES (?, ?)
       ON CONFLICT (topic) DO UPDATE SET packet = excluded.packet`,
    ),
    retainedAll: db.prepare('SELECT topic, packet FROM retained ORDER BY rowid'),
    subscriptionsDurable: db.prepare('SELECT * FROM subscriptions WHERE qos > 0'),
    subscriptionPut: db.prepare(
      `INSERT INTO subscriptions (client_id, topic, qos, rh, rap, nl, sub_id)
       VALUES (@client_id, @topic, @qos, @rh, @rap, @nl, @sub_id)
       ON CONFLICT (client_id, topic) DO UPDATE SET qos = excluded.qos, rh = excluded.rh,
         rap = excluded.rap, nl = excluded.nl, sub_id = excluded.sub_id`,
    ),
    subscriptionDelete: db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND topic = ?'),
    subscription: db.prepare('SELECT * FROM subscriptions WHERE client_id = ? AND topic = ?'),
    subscriptionsOfClient: db.prepare(
      'SELECT * FROM subscriptions WHERE client_id = ? ORDER BY rowid',
    ),
    subscriptionsDeleteClient: db.prepare('DELETE FROM subscriptions WHERE client_id = ?'),
    subscribedClients: db.prepare('SELECT COUNT(DISTINCT client_id) AS n FROM subscriptions'),
    clientsOfTopic: db.prepare('SELECT client_id FROM subscriptions WHERE topic = ?'),
    incomingPut: db.prepare(
      'INSERT OR REPLACE INTO incoming (client_id, message_id, packet) VALUES (?, ?, ?)',
    ),
    incomingGet: db.prepare('SELECT packet FROM incoming WHERE client_id = ? AND message_id = ?'),
    incomingDelete: db.prepare('DELETE FROM incoming WHERE client_id = ? AND message_id = ?'),
    incomingDeleteClient: db.prepare('DELETE FROM incoming WHERE client_id = ?'),
    willPut: db.prepare(
      'INSERT OR REPLACE INTO wills (client_id, broker_id, packet) VALUES (?, ?, ?)',
    ),
    will: db.prepare('SELECT packet FROM wills WHERE client_id = ?'),
    willDelete: db.prepare('DELETE FROM wills WHERE client_id = ?'),
    willsAll: db.prepare('SELECT broker_id, packet FROM wills'),
    outgoingInsert: db.prepare(
      `INSERT INTO outgoing (client_id, broker_id, broker_counter, message_id, packet)
       VALUES (?, ?, ?, NULL, ?)`,
    ),
    outgoingByOrigin: db.prepare(
      `SELECT seq FROM outgoing WHERE client_id = ? AND broker_id IS ? AND broker_counter IS ?
       ORDER BY seq LIMIT 1`,
    ),
    outgoingSetMessageId: db.prepare('UPDATE outgoing SET message_id = ? WHERE seq = ?'),
    outgoingByMessageId: db.prepare(
      `SELECT seq, packet, message_id FROM outgoing WHERE client_id = ? AND message_id = ?
       ORDER BY seq LIMIT 1`,
    ),
    outgoingReplace: db.prepare(
      `UPDATE outgoing SET broker_id = ?, broker_counter = ?, message_id = ?, packet = ?
       WHERE seq = ?`,
    ),
    outgoingDelete: db.prepare('DELETE FROM outgoing WHERE seq = ?'),
    outgoingOfClient: db.prepare(
      'SELECT packet, message_id FROM outgoing WHERE client_id = ? ORDER BY seq',
    ),
  }
}

export class SqliteStore {
  readonly db: Database.Database
  readonly sql: BrokerStatements

  constructor(path: string) {
    // WAL + NORMAL: a commit survives the process being killed; only an OS crash can lose the
    // last ones. FULL would fsync every QoS 1 message. On a full disk it opens all the same
    // (lib/sqlite-open.ts), and the broker refuses what it cannot store.
    this.db = openWalDatabase(path, ['synchronous = NORMAL']).db
    migrate(this.db, MIGRATIONS)
    this.sql = prepare(this.db)
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
