/**
 * An Aedes persistence on SQLite (better-sqlite3). Every operation is one synchronous statement or
 * transaction, so operations complete in the order Aedes issues them, and a QoS 1 message queued
 * for an offline client is on disk before the publisher's PUBACK. WAL with synchronous=NORMAL:
 * a killed broker process loses nothing committed; only an OS crash can lose the last commits.
 *
 * It implements the async interface of aedes-persistence 11 (the shape of its in-memory
 * `asyncPersistence.js`) and is checked against that package's abstract test suite.
 */
import { Readable } from 'node:stream'
import Database from 'better-sqlite3'
import Packet from 'aedes-packet/packet.js'
import QlobberSub from 'qlobber/aedes/qlobber-sub.js'
import qlobber from 'qlobber'
import { decodePacket, encodePacket, type StoredPacket } from './packet-codec.js'

const QLOBBER = { wildcard_one: '+', wildcard_some: '#', separator: '/' } as const

interface ClientLike {
  readonly id: string
}
interface BrokerLike {
  readonly id: string
}
interface SubscriptionIn {
  topic: string
  qos: number
  rh?: number
  rap?: boolean
  nl?: boolean
  subscriptionIdentifier?: number
}
interface SubscriptionOut {
  topic: string
  qos: number
  rh: number | undefined
  rap: boolean | undefined
  nl: boolean | undefined
  subscriptionIdentifier?: number
}
interface SubRow {
  client_id: string
  topic: string
  qos: number
  rh: number | null
  rap: number | null
  nl: number | null
  sub_id: number | null
}

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
  CREATE TABLE IF NOT EXISTS incoming (
    client_id TEXT NOT NULL, message_id INTEGER NOT NULL, packet BLOB NOT NULL,
    PRIMARY KEY (client_id, message_id)
  );
  CREATE TABLE IF NOT EXISTS wills (client_id TEXT PRIMARY KEY, broker_id TEXT NOT NULL, packet BLOB NOT NULL);
`

export class SqlitePersistence {
  readonly #db: Database.Database
  readonly #trie = new QlobberSub(QLOBBER)
  #broker: BrokerLike | undefined
  #destroyed = false

  constructor(path: string) {
    this.#db = new Database(path)
    this.#db.pragma('journal_mode = WAL')
    this.#db.pragma('synchronous = NORMAL')
    this.#db.exec(SCHEMA)
    for (const row of this.#db
      .prepare<[], SubRow>('SELECT * FROM subscriptions WHERE qos > 0')
      .all()) {
      this.#trie.add(row.topic, subEntry(row))
    }
  }

  /** For the conformance suite: it reads `broker.id`. */
  get broker(): BrokerLike | undefined {
    return this.#broker
  }

  async setup(broker: BrokerLike): Promise<void> {
    this.#broker = broker
    await Promise.resolve()
  }

  // ---- retained ----

  async storeRetained(packet: StoredPacket): Promise<void> {
    if (packet.payload.length === 0) {
      this.#db.prepare('DELETE FROM retained WHERE topic = ?').run(packet.topic)
    } else {
      this.#db
        .prepare(
          'INSERT INTO retained (topic, packet) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET packet = excluded.packet',
        )
        .run(packet.topic, encodePacket({ ...packet }))
    }
    await Promise.resolve()
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    const rows = this.#db
      .prepare<[], { topic: string; packet: Buffer }>(
        'SELECT topic, packet FROM retained ORDER BY rowid',
      )
      .all()
    const matched: StoredPacket[] = []
    for (const pattern of patterns) {
      const matcher = new qlobber.QlobberTrue(QLOBBER)
      matcher.add(pattern)
      for (const row of rows) if (matcher.test(row.topic)) matched.push(decodePacket(row.packet))
    }
    return Readable.from(matched)
  }

  // ---- subscriptions ----

  async addSubscriptions(client: ClientLike, subs: SubscriptionIn[]): Promise<void> {
    const existing = this.#db.prepare<[string, string], SubRow>(
      'SELECT * FROM subscriptions WHERE client_id = ? AND topic = ?',
    )
    const upsert = this.#db.prepare(
      `INSERT INTO subscriptions (client_id, topic, qos, rh, rap, nl, sub_id) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id, topic) DO UPDATE SET qos = excluded.qos, rh = excluded.rh,
         rap = excluded.rap, nl = excluded.nl, sub_id = excluded.sub_id`,
    )
    this.#db.transaction(() => {
      for (const sub of subs) {
        const before = existing.get(client.id, sub.topic)
        const row: SubRow = {
          client_id: client.id,
          topic: sub.topic,
          qos: sub.qos,
          rh: sub.rh ?? null,
          rap: sub.rap === undefined ? null : Number(sub.rap),
          nl: sub.nl === undefined ? null : Number(sub.nl),
          sub_id: sub.subscriptionIdentifier ?? null,
        }
        if (sub.qos > 0) this.#trie.add(sub.topic, subEntry(row))
        else if (before && before.qos > 0)
          this.#trie.remove(sub.topic, { clientId: client.id, topic: sub.topic })
        upsert.run(row.client_id, row.topic, row.qos, row.rh, row.rap, row.nl, row.sub_id)
      }
    })()
    await Promise.resolve()
  }

  async removeSubscriptions(client: ClientLike, topics: string[]): Promise<void> {
    const existing = this.#db.prepare<[string, string], SubRow>(
      'SELECT * FROM subscriptions WHERE client_id = ? AND topic = ?',
    )
    const remove = this.#db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND topic = ?')
    this.#db.transaction(() => {
      for (const topic of topics) {
        const before = existing.get(client.id, topic)
        if (!before) continue
        if (before.qos > 0) this.#trie.remove(topic, { clientId: client.id, topic })
        remove.run(client.id, topic)
      }
    })()
    await Promise.resolve()
  }

  async subscriptionsByClient(client: ClientLike): Promise<SubscriptionOut[]> {
    const rows = this.#db
      .prepare<[string], SubRow>('SELECT * FROM subscriptions WHERE client_id = ? ORDER BY rowid')
      .all(client.id)
    await Promise.resolve()
    return rows.map((row) => {
      const sub: SubscriptionOut = {
        topic: row.topic,
        qos: row.qos,
        rh: row.rh ?? undefined,
        rap: row.rap === null ? undefined : Boolean(row.rap),
        nl: row.nl === null ? undefined : Boolean(row.nl),
      }
      if (row.sub_id !== null) sub.subscriptionIdentifier = row.sub_id
      return sub
    })
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    const row = this.#db
      .prepare<[], { n: number }>('SELECT COUNT(DISTINCT client_id) AS n FROM subscriptions')
      .get()
    await Promise.resolve()
    return { subsCount: this.#trie.subscriptionsCount, clientsCount: row?.n ?? 0 }
  }

  async subscriptionsByTopic(topic: string): Promise<ReturnType<QlobberSub['match']>> {
    await Promise.resolve()
    return this.#trie.match(topic)
  }

  async cleanSubscriptions(client: ClientLike): Promise<void> {
    const rows = this.#db
      .prepare<[string], SubRow>('SELECT * FROM subscriptions WHERE client_id = ?')
      .all(client.id)
    for (const row of rows) {
      if (row.qos > 0) this.#trie.remove(row.topic, { clientId: client.id, topic: row.topic })
    }
    this.#db.prepare('DELETE FROM subscriptions WHERE client_id = ?').run(client.id)
    await Promise.resolve()
  }

  getClientList(topic: string): Readable {
    const rows = this.#db
      .prepare<[string], { client_id: string }>(
        'SELECT client_id FROM subscriptions WHERE topic = ?',
      )
      .all(topic)
    return Readable.from(rows.map((r) => r.client_id))
  }

  // ---- outgoing (QoS > 0 deliveries, possibly to offline clients) ----

  async outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet)
  }

  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: StoredPacket): Promise<void> {
    const insert = this.#db.prepare(
      'INSERT INTO outgoing (client_id, broker_id, broker_counter, message_id, packet) VALUES (?, ?, ?, NULL, ?)',
    )
    const stored = new Packet(packet)
    const blob = encodePacket(stored)
    this.#db.transaction(() => {
      for (const sub of subs)
        insert.run(sub.clientId, stored.brokerId ?? null, stored.brokerCounter ?? null, blob)
    })()
    await Promise.resolve()
  }

  async outgoingUpdate(client: ClientLike, packet: StoredPacket): Promise<void> {
    const rows = this.#db
      .prepare<
        [string],
        {
          seq: number
          broker_id: string | null
          broker_counter: number | null
          message_id: number | null
        }
      >(
        'SELECT seq, broker_id, broker_counter, message_id FROM outgoing WHERE client_id = ? ORDER BY seq',
      )
      .all(client.id)
    for (const row of rows) {
      if (row.broker_id === (packet.brokerId ?? null)) {
        // Message ids wrap at 65535; the broker counter tells packets apart.
        if (row.broker_counter === (packet.brokerCounter ?? null)) {
          this.#setMessageId(row.seq, packet.messageId ?? null)
          return
        }
      } else if (packet.cmd !== 'publish' && row.message_id === (packet.messageId ?? null)) {
        // QoS 2: the PUBLISH with this id becomes its PUBREL. (Never for a PUBLISH: a row of an
        // earlier broker run that happens to hold the same id must not be overwritten.)
        this.#db
          .prepare(
            'UPDATE outgoing SET broker_id = ?, broker_counter = ?, message_id = ?, packet = ? WHERE seq = ?',
          )
          .run(
            packet.brokerId ?? null,
            packet.brokerCounter ?? null,
            packet.messageId ?? null,
            encodePacket(packet),
            row.seq,
          )
        return
      }
    }
    await Promise.resolve()
    throw new Error('no such packet')
  }

  async outgoingClearMessageId(
    client: ClientLike,
    packet: { messageId?: number },
  ): Promise<StoredPacket | undefined> {
    const row = this.#db
      .prepare<[string, number], { seq: number; packet: Buffer; message_id: number }>(
        'SELECT seq, packet, message_id FROM outgoing WHERE client_id = ? AND message_id = ? ORDER BY seq LIMIT 1',
      )
      .get(client.id, packet.messageId ?? -1)
    await Promise.resolve()
    if (!row) return undefined
    this.#db.prepare('DELETE FROM outgoing WHERE seq = ?').run(row.seq)
    return toPacket(row.packet, row.message_id)
  }

  outgoingStream(client: ClientLike): Readable {
    const rows = this.#db
      .prepare<[string], { packet: Buffer; message_id: number | null }>(
        'SELECT packet, message_id FROM outgoing WHERE client_id = ? ORDER BY seq',
      )
      .all(client.id)
    return Readable.from(rows.map((r) => toPacket(r.packet, r.message_id)))
  }

  // ---- incoming (QoS 2) ----

  async incomingStorePacket(client: ClientLike, packet: StoredPacket): Promise<void> {
    const stored = new Packet(packet)
    stored.messageId = packet.messageId
    this.#db
      .prepare('INSERT OR REPLACE INTO incoming (client_id, message_id, packet) VALUES (?, ?, ?)')
      .run(client.id, packet.messageId ?? 0, encodePacket(stored))
    await Promise.resolve()
  }

  async incomingGetPacket(
    client: ClientLike,
    packet: { messageId?: number },
  ): Promise<StoredPacket> {
    const row = this.#db
      .prepare<[string, number], { packet: Buffer }>(
        'SELECT packet FROM incoming WHERE client_id = ? AND message_id = ?',
      )
      .get(client.id, packet.messageId ?? 0)
    await Promise.resolve()
    if (!row) throw new Error('no such packet')
    return decodePacket(row.packet)
  }

  async incomingDelPacket(client: ClientLike, packet: { messageId?: number }): Promise<void> {
    const changes = this.#db
      .prepare('DELETE FROM incoming WHERE client_id = ? AND message_id = ?')
      .run(client.id, packet.messageId ?? 0).changes
    await Promise.resolve()
    if (changes === 0) throw new Error('no such packet')
  }

  async cleanIncoming(client: ClientLike): Promise<void> {
    this.#db.prepare('DELETE FROM incoming WHERE client_id = ?').run(client.id)
    await Promise.resolve()
  }

  // ---- wills ----

  async putWill(client: ClientLike, packet: StoredPacket): Promise<void> {
    packet.brokerId = this.#broker?.id
    packet.clientId = client.id
    this.#db
      .prepare('INSERT OR REPLACE INTO wills (client_id, broker_id, packet) VALUES (?, ?, ?)')
      .run(client.id, packet.brokerId ?? '', encodePacket(packet))
    await Promise.resolve()
  }

  async getWill(client: ClientLike): Promise<StoredPacket | undefined> {
    const row = this.#db
      .prepare<[string], { packet: Buffer }>('SELECT packet FROM wills WHERE client_id = ?')
      .get(client.id)
    await Promise.resolve()
    return row ? decodePacket(row.packet) : undefined
  }

  async delWill(client: ClientLike): Promise<StoredPacket | undefined> {
    const will = await this.getWill(client)
    this.#db.prepare('DELETE FROM wills WHERE client_id = ?').run(client.id)
    return will
  }

  /** Wills of clients whose broker is not among `brokers` (a broker that died with them). */
  streamWill(brokers: Readonly<Record<string, unknown>> = {}): Readable {
    const rows = this.#db
      .prepare<[], { broker_id: string; packet: Buffer }>('SELECT broker_id, packet FROM wills')
      .all()
    return Readable.from(
      rows.filter((r) => !(r.broker_id in brokers)).map((r) => decodePacket(r.packet)),
    )
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) throw new Error('destroyed called twice!')
    this.#destroyed = true
    this.#db.close()
    await Promise.resolve()
  }

  #setMessageId(seq: number, messageId: number | null): void {
    const row = this.#db
      .prepare<[number], { packet: Buffer }>('SELECT packet FROM outgoing WHERE seq = ?')
      .get(seq)
    if (!row) return
    const packet = decodePacket(row.packet)
    packet.messageId = messageId ?? undefined
    this.#db
      .prepare('UPDATE outgoing SET message_id = ?, packet = ? WHERE seq = ?')
      .run(messageId, encodePacket(packet), seq)
  }
}

function subEntry(row: SubRow) {
  return {
    clientId: row.client_id,
    topic: row.topic,
    qos: row.qos,
    rh: row.rh ?? undefined,
    rap: row.rap === null ? undefined : Boolean(row.rap),
    nl: row.nl === null ? undefined : Boolean(row.nl),
  }
}

/** A queued packet as it was stored, with the message id it was last given. */
function toPacket(blob: Buffer, messageId: number | null): StoredPacket {
  const packet = decodePacket(blob)
  // JSON drops `messageId: undefined`; aedes' queued packets carry the key ([MQTT-2.3.1-1]).
  if (!('messageId' in packet) && ((packet.qos ?? 0) > 0 || packet.cmd !== 'publish')) {
    packet.messageId = undefined
  }
  if (messageId !== null) packet.messageId = messageId
  return packet
}
