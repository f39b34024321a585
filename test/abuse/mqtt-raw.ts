/**
 * MQTT 3.1.1 packets by hand (§2.2 fixed header, §3.1 CONNECT, §3.3 PUBLISH, §3.8 SUBSCRIBE), for
 * connections no well-behaved client would make: half a CONNECT, a length of 256 MB, a subscriber
 * that never reads. `connackCode` reads the return code of the CONNACK (§3.2.2.3).
 */
function remainingLength(n: number): Buffer {
  const bytes: number[] = []
  let x = n
  do {
    let byte = x % 128
    x = Math.floor(x / 128)
    if (x > 0) byte |= 0x80
    bytes.push(byte)
  } while (x > 0)
  return Buffer.from(bytes)
}

function str(s: string | Buffer): Buffer {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s)
  const len = Buffer.alloc(2)
  len.writeUInt16BE(b.length)
  return Buffer.concat([len, b])
}

function packet(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), remainingLength(body.length), body])
}

export interface ConnectFields {
  readonly clientId: string
  readonly username?: string
  readonly password?: string
  readonly clean?: boolean
  readonly keepaliveS?: number
}

export function connectPacket(f: ConnectFields): Buffer {
  let flags = f.clean === false ? 0 : 0x02
  if (f.username !== undefined) flags |= 0x80
  if (f.password !== undefined) flags |= 0x40
  const keepalive = Buffer.alloc(2)
  keepalive.writeUInt16BE(f.keepaliveS ?? 60)
  const parts = [str('MQTT'), Buffer.from([4, flags]), keepalive, str(f.clientId)]
  if (f.username !== undefined) parts.push(str(f.username))
  if (f.password !== undefined) parts.push(str(f.password))
  return packet(0x10, Buffer.concat(parts))
}

export function subscribePacket(messageId: number, filter: string, qos: 0 | 1): Buffer {
  const id = Buffer.alloc(2)
  id.writeUInt16BE(messageId)
  return packet(0x82, Buffer.concat([id, str(filter), Buffer.from([qos])]))
}

export function publishPacket(topic: string, payload: Buffer): Buffer {
  return packet(0x30, Buffer.concat([str(topic), payload]))
}

/** A fixed header announcing 268,435,455 bytes (the most §2.2.3 allows) and nothing after it. */
export const HUGE_HEADER = Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])

/** The CONNACK's return code in raw bytes received (latin1), or null if none arrived. */
export function connackCode(received: string): number | null {
  const b = Buffer.from(received, 'latin1')
  if (b.length >= 4 && b[0] === 0x20 && b[1] === 2) return b[3] ?? null
  return null
}
