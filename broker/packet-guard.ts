/**
 * Aedes (mqtt-packet) buffers a whole packet before anyone looks at it, so a client could send the
 * header of a 200 MB CONNECT and have the broker hold it in memory before it has even logged in.
 * This guard watches what the client's parser is holding and drops the connection as soon as it
 * is more than one packet of the allowed size.
 */
import type { Logger } from 'pino'

interface ParserLike {
  parse(buf: Buffer): unknown
  _list?: { length: number }
}

/** Packet headers and topic on top of the largest allowed payload. */
const OVERHEAD_BYTES = 64 * 1024

export function guardPacketSize(
  client: { id: string | null; _parser?: unknown; conn: { destroy(): void } },
  maxPayloadBytes: number,
  log: Logger,
): void {
  const parser = client._parser as ParserLike | undefined
  // mqtt-packet's parser keeps unparsed bytes in `_list`; without it there is nothing to watch.
  if (typeof parser?.parse !== 'function' || typeof parser._list?.length !== 'number') {
    log.warn('MQTT packet-size guard unavailable for this aedes version')
    return
  }
  const limit = maxPayloadBytes + OVERHEAD_BYTES
  const parse = parser.parse.bind(parser)
  parser.parse = (buf: Buffer) => {
    const result = parse(buf)
    if ((parser._list?.length ?? 0) > limit) {
      log.warn(
        { clientId: client.id, limit },
        'MQTT packet over the size limit; connection dropped',
      )
      client.conn.destroy()
    }
    return result
  }
}
