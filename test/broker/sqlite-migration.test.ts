import { join } from 'node:path'
import Database from 'better-sqlite3'
import mqtt from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { startBroker } from '../../broker/broker.js'
import { encodePacket } from '../../broker/packet-codec.js'
import { silentLogger } from '../../lib/logger.js'
import { endClient } from '../../lib/mqtt.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

/** The schema as the broker wrote it before its migrations were numbered (user_version 0). */
const UNVERSIONED_SCHEMA = `
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

function writeUnversionedDatabase(path: string): void {
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.exec(UNVERSIONED_SCHEMA)
  db.prepare('INSERT INTO retained (topic, packet) VALUES (?, ?)').run(
    'old/retained',
    encodePacket({ cmd: 'publish', topic: 'old/retained', payload: 'kept', qos: 1, retain: true }),
  )
  db.prepare(
    'INSERT INTO subscriptions (client_id, topic, qos, rh, rap, nl, sub_id) VALUES (?, ?, 1, 0, 0, 0, NULL)',
  ).run('old-sub', 'old/queued')
  db.prepare(
    `INSERT INTO outgoing (client_id, broker_id, broker_counter, message_id, packet)
     VALUES (?, ?, ?, NULL, ?)`,
  ).run(
    'old-sub',
    'old-broker',
    1,
    encodePacket({
      cmd: 'publish',
      topic: 'old/queued',
      payload: Buffer.from('waiting'),
      qos: 1,
      retain: false,
      dup: false,
      brokerId: 'old-broker',
      brokerCounter: 1,
    }),
  )
  db.close()
}

function userVersion(path: string): number {
  const db = new Database(path, { readonly: true })
  try {
    return db.pragma('user_version', { simple: true }) as number
  } finally {
    db.close()
  }
}

async function brokerOn(path: string) {
  const broker = await startBroker(
    { host: '127.0.0.1', port: 0, wsPort: null, persistencePath: path, auth: null, tls: null },
    { log: silentLogger() },
  )
  onTestFinished(() => broker.close())
  return broker
}

describe('broker database migrations', () => {
  it('opens a database written before migrations were numbered, keeping its sessions, queue and retained messages', async () => {
    const dir = await tempDir('broker-migrate')
    const path = join(dir, 'broker.sqlite')
    writeUnversionedDatabase(path)
    expect(userVersion(path)).toBe(0)

    const broker = await brokerOn(path)
    expect(userVersion(path)).toBe(1)

    const received: { topic: string; payload: string }[] = []
    const client = mqtt.connect(broker.url, { clientId: 'old-sub', clean: false })
    onTestFinished(() => endClient(client))
    client.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }))
    await waitFor(() => received.length >= 1, { what: 'the queued message' })
    expect(received).toEqual([{ topic: 'old/queued', payload: 'waiting' }])

    await client.subscribeAsync('old/retained', { qos: 1 })
    await waitFor(() => received.length >= 2, { what: 'the retained message' })
    expect(received[1]).toEqual({ topic: 'old/retained', payload: 'kept' })
  })

  it('opens its own database again without changing it', async () => {
    const dir = await tempDir('broker-migrate-again')
    const path = join(dir, 'broker.sqlite')
    const first = await brokerOn(path)
    await first.close()
    expect(userVersion(path)).toBe(1)
    await brokerOn(path)
    expect(userVersion(path)).toBe(1)
  })
})
