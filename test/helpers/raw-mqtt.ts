/**
 * Raw MQTT 3.1.1 bytes for tests that must misbehave on the wire in ways a client library will not:
 * stop reading after CONNECT, send only part of a CONNECT, announce a 256 MB packet (§2.2 fixed
 * header, §3.1 CONNECT, §3.3 PUBLISH, §3.8 SUBSCRIBE; `connackCode` reads §3.2.2.3).
 */
import { connect, type Socket } from 'node:net'

function remainingLength(length: number): Buffer {
  const bytes: number[] = []
  let rest = length
  do {
    let byte = rest % 128
    rest = Math.floor(rest / 128)
    if (rest > 0) byte |= 0x80
    bytes.push(byte)
  } while (rest > 0)
  return Buffer.from(bytes)
}

function utf8(text: string): Buffer {
  const body = Buffer.from(text, 'utf8')
  const length = Buffer.alloc(2)
  length.writeUInt16BE(body.length)
  return Buffer.concat([length, body])
}

/** A CONNECT packet (MQTT 3.1.1 §3.1), keep-alive 0 unless given. */
export function connectPacket(options: {
  readonly clientId: string
  readonly clean: boolean
  readonly username?: string
  readonly password?: string
  readonly keepaliveS?: number
  /** A QoS 0 will. */
  readonly will?: { readonly topic: string; readonly payload: string }
}): Buffer {
  let flags = options.clean ? 0x02 : 0x00
  if (options.will) flags |= 0x04
  if (options.username !== undefined) flags |= 0x80
  if (options.password !== undefined) flags |= 0x40
  const keepalive = Buffer.alloc(2)
  keepalive.writeUInt16BE(options.keepaliveS ?? 0)
  const body = Buffer.concat([
    utf8('MQTT'),
    Buffer.from([0x04, flags]),
    keepalive,
    utf8(options.clientId),
    ...(options.will ? [utf8(options.will.topic), utf8(options.will.payload)] : []),
    ...(options.username === undefined ? [] : [utf8(options.username)]),
    ...(options.password === undefined ? [] : [utf8(options.password)]),
  ])
  return packet(0x10, body)
}

function packet(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type]), remainingLength(body.length), body])
}

/** A SUBSCRIBE of one filter (§3.8). */
export function subscribePacket(messageId: number, filter: string, qos: 0 | 1): Buffer {
  const id = Buffer.alloc(2)
  id.writeUInt16BE(messageId)
  return packet(0x82, Buffer.concat([id, utf8(filter), Buffer.from([qos])]))
}

/** A QoS 0 PUBLISH (§3.3). */
export function publishPacket(topic: string, payload: Buffer): Buffer {
  return packet(0x30, Buffer.concat([utf8(topic), payload]))
}

/** A fixed header announcing 268,435,455 bytes (the most §2.2.3 allows) and nothing after it. */
export const HUGE_HEADER = Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f])

/** The CONNACK's return code in raw bytes received (latin1), or null if none arrived. */
export function connackCode(received: string): number | null {
  const b = Buffer.from(received, 'latin1')
  if (b.length >= 4 && b[0] === 0x20 && b[1] === 2) return b[3] ?? null
  return null
}

/** Open a TCP connection to 127.0.0.1:port, optionally from another loopback address. */
export function rawConnect(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) })
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/**
 * Send a CONNECT and resolve with the CONNACK return code (MQTT 3.1.1 §3.2.2.3). The socket is left
 * paused: nothing after the CONNACK is read until the caller resumes it.
 */
export function rawLogin(socket: Socket, packet: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk])
      if (got.length < 4) return
      socket.pause()
      socket.off('data', onData)
      socket.off('close', onClose)
      if (got[0] !== 0x20) reject(new Error(`expected CONNACK, got 0x${got.toString('hex', 0, 4)}`))
      else resolve(got[3] ?? -1)
    }
    const onClose = (): void => reject(new Error('closed before CONNACK'))
    socket.on('data', onData)
    socket.once('close', onClose)
    socket.write(packet)
  })
}

/** Count the packets of each type (the high nibble of the first byte) that arrive on `socket`. */
export function countPackets(socket: Socket): Map<number, number> {
  const counts = new Map<number, number>()
  let pending = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk])
    for (;;) {
      let length = 0
      let multiplier = 1
      let at = 1
      let complete = false
      while (at < pending.length && at <= 4) {
        const byte = pending[at] ?? 0
        length += (byte & 0x7f) * multiplier
        multiplier *= 128
        at++
        if ((byte & 0x80) === 0) {
          complete = true
          break
        }
      }
      if (!complete || pending.length < at + length) return
      const type = (pending[0] ?? 0) >> 4
      counts.set(type, (counts.get(type) ?? 0) + 1)
      pending = pending.subarray(at + length)
    }
  })
  return counts
}
