/**
 * An Aedes persistence on SQLite (better-sqlite3). Every operation is one synchronous statement or
 * transaction, so operations complete in the order Aedes issues them, and a QoS 1 message queued
 * for an offline client is on disk before the publisher's PUBACK.
 *
 * It implements the async interface of aedes-persistence 11 (the shape of its in-memory
 * `asyncPersistence.js`) and is checked against that package's abstract test suite.
 */
import { Readable } from 'node:stream'
import Packet from 'aedes-packet/packet.js'
import qlobber from 'qlobber'
import QlobberSub from 'qlobber/aedes/qlobber-sub.js'
import { OutgoingQueue } from './outgoing-queue.js'
import { decodePacket, encodePacket, type StoredPacket } from './packet-codec.js'
import { SqliteStore, settle, type SubRow } from './sqlite-store.js'

const QLOBBER = { wildcard_one: '+', wildcard_some: '#', separator: '/' } as const

interface ClientLike {
  readonly id: string
}
interface BrokerLike {
  readonly id: string
  /** Aedes is an EventEmitter; broker.ts logs its 'error' events. */
  emit?(event: 'error', err: Error): boolean
  listenerCount?(event: 'error'): number
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

export class SqlitePersistence extends OutgoingQueue {
  readonly #store: SqliteStore
  readonly #trie = new QlobberSub(QLOBBER)
  #broker: BrokerLike | undefined
  #destroyed = false

  constructor(path: string) {
    const store = new SqliteStore(path)
    super(store)
    this.#store = store
    for (const row of store.sql.subscriptionsDurable.all()) {
      this.#trie.add(row.topic, subEntry(row))
    }
  }

  /** For the conformance suite: it reads `broker.id`. */
  get broker(): BrokerLike | undefined {
    return this.#broker
  }

  // Aedes requires setup to be an AsyncFunction.
  // eslint-disable-next-line @typescript-eslint/require-await
  async setup(broker: BrokerLike): Promise<void> {
    this.#broker = broker
  }

  // ---- retained ----

  storeRetained(packet: StoredPacket): Promise<void> {
    return settle(() => {
      if (packet.payload.length === 0) {
        this.#store.sql.retainedDelete.run(packet.topic)
      } else {
        this.#store.sql.retainedPut.run(packet.topic, encodePacket({ ...packet }))
      }
    })
  }

  createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    const rows = this.#store.sql.retainedAll.all()
    const matched: StoredPacket[] = []
    for (const pattern of patterns) {
      const matcher = new qlobber.QlobberTrue(QLOBBER)
      matcher.add(pattern)
      // [MQTT-4.7.2-1] a filter starting with a wildcard never matches a `$` topic (`#` is not
      // `$SYS/…`, whose figures are retained: broker/sys-topics.ts).
      const dollar = !pattern.startsWith('#') && !pattern.startsWith('+')
      for (const row of rows) {
        if ((dollar || !row.topic.startsWith('$')) && matcher.test(row.topic))
          matched.push(decodePacket(row.packet))
      }
    }
    return Readable.from(matched)
  }

  // ---- subscriptions ----

  addSubscriptions(client: ClientLike, subs: SubscriptionIn[]): Promise<void> {
    return settle(() => {
      this.#store.transaction(() => {
        for (const sub of subs) {
          const before = this.#subscription(client.id, sub.topic)
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
          else if (before && before.qos > 0) {
            this.#trie.remove(sub.topic, { clientId: client.id, topic: sub.topic })
          }
          this.#store.sql.subscriptionPut.run(row)
        }
      })
    })
  }

  removeSubscriptions(client: ClientLike, topics: string[]): Promise<void> {
    return settle(() => {
      this.#store.transaction(() => {
        for (const topic of topics) {
          const before = this.#subscription(client.id, topic)
          if (!before) continue
          if (before.qos > 0) this.#trie.remove(topic, { clientId: client.id, topic })
          this.#store.sql.subscriptionDelete.run(client.id, topic)
        }
      })
    })
  }

  subscriptionsByClient(client: ClientLike): Promise<SubscriptionOut[]> {
    return settle(() =>
      this.#store.sql.subscriptionsOfClient.all(client.id).map((row) => {
        const sub: SubscriptionOut = {
          topic: row.topic,
          qos: row.qos,
          rh: row.rh ?? undefined,
          rap: row.rap === null ? undefined : Boolean(row.rap),
          nl: row.nl === null ? undefined : Boolean(row.nl),
        }
        if (row.sub_id !== null) sub.subscriptionIdentifier = row.sub_id
        return sub
      }),
    )
  }

  countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return settle(() => {
      const row = this.#store.sql.subscribedClients.get()
      return { subsCount: this.#trie.subscriptionsCount, clientsCount: row?.n ?? 0 }
    })
  }

  subscriptionsByTopic(topic: string): Promise<ReturnType<QlobberSub['match']>> {
    return settle(() => this.#trie.match(topic))
  }

  cleanSubscriptions(client: ClientLike): Promise<void> {
    return settle(() => {
      const rows = this.#store.sql.subscriptionsOfClient.all(client.id)
      for (const row of rows) {
        if (row.qos > 0) this.#trie.remove(row.topic, { clientId: client.id, topic: row.topic })
      }
      this.#store.sql.subscriptionsDeleteClient.run(client.id)
    })
  }

  getClientList(topic: string): Readable {
    const rows = this.#store.sql.clientsOfTopic.all(topic)
    return Readable.from(rows.map((r) => r.client_id))
  }

  // ---- incoming (QoS 2) ----

  incomingStorePacket(client: ClientLike, packet: StoredPacket): Promise<void> {
    return settle(() => {
      const stored = new Packet(packet)
      stored.messageId = packet.messageId
      this.#store.sql.incomingPut.run(client.id, packet.messageId ?? 0, encodePacket(stored))
    })
  }

  incomingGetPacket(client: ClientLike, packet: { messageId?: number }): Promise<StoredPacket> {
    return settle(() => {
      const row = this.#store.sql.incomingGet.get(client.id, packet.messageId ?? 0)
      if (!row) throw new Error('no such packet')
      return decodePacket(row.packet)
    })
  }

  incomingDelPacket(client: ClientLike, packet: { messageId?: number }): Promise<void> {
    return settle(() => {
      const { changes } = this.#store.sql.incomingDelete.run(client.id, packet.messageId ?? 0)
      if (changes === 0) throw new Error('no such packet')
    })
  }

  cleanIncoming(client: ClientLike): Promise<void> {
    return settle(() => {
      this.#store.sql.incomingDeleteClient.run(client.id)
    })
  }

  // ---- wills ----

  putWill(client: ClientLike, packet: StoredPacket): Promise<void> {
    return settle(() => {
      packet.brokerId = this.#broker?.id
      packet.clientId = client.id
      this.#store.sql.willPut.run(client.id, packet.brokerId ?? '', encodePacket(packet))
    })
  }

  getWill(client: ClientLike): Promise<StoredPacket | undefined> {
    return settle(() => this.#will(client.id))
  }

  /**
   * Never rejects: aedes' CONNECT handler chains this with `.finally()` and handles no rejection
   * (on a full disk an unhandled rejection killed the process at every reconnect with a will).
   * A delete that fails leaves the old will stored and is reported as a broker error; a new will
   * of the same CONNECT then fails to store in putWill, which refuses that CONNECT.
   */
  delWill(client: ClientLike): Promise<StoredPacket | undefined> {
    return settle(() => {
      const will = this.#will(client.id)
      try {
        this.#store.sql.willDelete.run(client.id)
      } catch (err) {
        this.#reportError(err)
      }
      return will
    })
  }

  /** Wills of clients whose broker is not among `brokers` (a broker that died with them). */
  streamWill(brokers: Readonly<Record<string, unknown>> = {}): Readable {
    const rows = this.#store.sql.willsAll.all()
    return Readable.from(
      rows.filter((r) => !(r.broker_id in brokers)).map((r) => decodePacket(r.packet)),
    )
  }

  destroy(): Promise<void> {
    return settle(() => {
      if (this.#destroyed) throw new Error('destroyed called twice!')
      this.#destroyed = true
      this.#store.close()
    })
  }

  /** A write that failed where aedes has no way to hear it: its 'error' event (logged). */
  #reportError(err: unknown): void {
    const broker = this.#broker
    if (!broker?.emit || (broker.listenerCount?.('error') ?? 0) === 0) return
    broker.emit('error', err instanceof Error ? err : new Error(String(err)))
  }

  #subscription(clientId: string, topic: string): SubRow | undefined {
    return this.#store.sql.subscription.get(clientId, topic)
  }

  #will(clientId: string): StoredPacket | undefined {
    const row = this.#store.sql.will.get(clientId)
    return row ? decodePacket(row.packet) : undefined
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
