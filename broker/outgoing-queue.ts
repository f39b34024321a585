/**
 * The outgoing half of the SQLite persistence: QoS > 0 deliveries queued per client (online or
 * not), in the order they were enqueued. Lookups go through indexes, so draining a long queue
 * stays linear. A row's packet is stored once; only its message id changes as it is delivered.
 */
import { Readable } from 'node:stream'
import Packet from 'aedes-packet/packet.js'
import { decodePacket, encodePacket, type StoredPacket } from './packet-codec.js'
import { settle, type SqliteStore } from './sqlite-store.js'

interface ClientLike {
  readonly id: string
}

export class OutgoingQueue {
  readonly #store: SqliteStore

  constructor(store: SqliteStore) {
    this.#store = store
  }

  outgoingEnqueue(sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    return this.outgoingEnqueueCombi([sub], packet)
  }

  outgoingEnqueueCombi(subs: { clientId: string }[], packet: StoredPacket): Promise<void> {
    return settle(() => {
      const stored = new Packet(packet)
      const blob = encodePacket(stored)
      const insert = this.#store.sql.outgoingInsert
      this.#store.transaction(() => {
        for (const sub of subs) {
          insert.run(sub.clientId, stored.brokerId ?? null, stored.brokerCounter ?? null, blob)
        }
      })
    })
  }

  /** A queued packet is being delivered with `packet.messageId` (or a PUBLISH became its PUBREL). */
  outgoingUpdate(client: ClientLike, packet: StoredPacket): Promise<void> {
    return settle(() => {
      // Message ids wrap at 65535; broker id + broker counter name a queued packet for sure.
      const same = this.#store.sql.outgoingByOrigin.get(
        client.id,
        packet.brokerId ?? null,
        packet.brokerCounter ?? null,
      )
      if (same) {
        this.#store.sql.outgoingSetMessageId.run(packet.messageId ?? null, same.seq)
        return
      }
      // QoS 2: the PUBLISH with this id becomes its PUBREL. Never for a PUBLISH: a row of an
      // earlier broker run that happens to hold the same id must not be overwritten.
      if (packet.cmd !== 'publish') {
        const byId = this.#store.sql.outgoingByMessageId.get(client.id, packet.messageId ?? -1)
        if (byId) {
          this.#store.sql.outgoingReplace.run(
            packet.brokerId ?? null,
            packet.brokerCounter ?? null,
            packet.messageId ?? null,
            encodePacket(packet),
            byId.seq,
          )
          return
        }
      }
      throw new Error('no such packet')
    })
  }

  outgoingClearMessageId(
    client: ClientLike,
    packet: { messageId?: number },
  ): Promise<StoredPacket | undefined> {
    return settle(() => {
      const row = this.#store.sql.outgoingByMessageId.get(client.id, packet.messageId ?? -1)
      if (!row) return undefined
      this.#store.sql.outgoingDelete.run(row.seq)
      return toPacket(row.packet, row.message_id)
    })
  }

  outgoingStream(client: ClientLike): Readable {
    const rows = this.#store.sql.outgoingOfClient.all(client.id)
    return Readable.from(rows.map((r) => toPacket(r.packet, r.message_id)))
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
