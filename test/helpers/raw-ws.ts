/**
 * A WebSocket client by hand (RFC 6455) over a TCP socket, for frames a well-behaved client never
 * sends: the opening handshake, then any bytes; the server's frames are read back as they come
 * (opcode and payload; a close frame's code).
 */
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { waitFor } from './wait-for.js'

export interface ServerFrame {
  readonly opcode: number
  readonly payload: Buffer
}

export interface RawWs {
  /** The HTTP status of the handshake (101 when upgraded). */
  readonly status: number
  readonly frames: () => readonly ServerFrame[]
  readonly closed: () => boolean
  write(bytes: Buffer): void
  /** The close code the server sent, once it closed (null: closed without a close frame). */
  closeCode(timeoutMs?: number): Promise<number | null>
  destroy(): void
}

function readFrames(buf: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = []
  let at = 0
  for (;;) {
    if (buf.length - at < 2) break
    const b0 = buf[at] ?? 0
    const b1 = buf[at + 1] ?? 0
    let len = b1 & 0x7f
    let head = 2
    if (len === 126) {
      if (buf.length - at < 4) break
      len = buf.readUInt16BE(at + 2)
      head = 4
    } else if (len === 127) {
      if (buf.length - at < 10) break
      len = Number(buf.readBigUInt64BE(at + 2))
      head = 10
    }
    if (buf.length - at < head + len) break
    frames.push({ opcode: b0 & 0x0f, payload: buf.subarray(at + head, at + head + len) })
    at += head + len
  }
  return { frames, rest: buf.subarray(at) }
}

/** A client frame: masked unless `unmasked`; `rsv` sets RSV1–3 bits; `fin` defaults to true. */
export function clientFrame(opts: {
  readonly opcode: number
  readonly payload: Buffer
  readonly fin?: boolean
  readonly rsv?: number
  readonly unmasked?: boolean
  /** Announce this length instead of the payload's (a lie). */
  readonly announce?: bigint
}): Buffer {
  const b0 = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opts.opcode
  const mask = opts.unmasked ? 0 : 0x80
  const n = opts.announce ?? BigInt(opts.payload.length)
  let head: Buffer
  if (n < 126n) head = Buffer.from([b0, mask | Number(n)])
  else if (n < 65536n) {
    head = Buffer.from([b0, mask | 126, 0, 0])
    head.writeUInt16BE(Number(n), 2)
  } else {
    head = Buffer.alloc(10)
    head[0] = b0
    head[1] = mask | 127
    head.writeBigUInt64BE(n, 2)
  }
  if (opts.unmasked) return Buffer.concat([head, opts.payload])
  const key = randomBytes(4)
  const body = Buffer.from(opts.payload.map((b, i) => b ^ (key[i % 4] ?? 0)))
  return Buffer.concat([head, key, body])
}

/** Open `path` with the opening handshake; `headers` replace the handshake's own when given. */
export function rawWs(
  port: number,
  path: string,
  headers: Record<string, string | null> = {},
): Promise<RawWs> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1')
    let buf: Buffer = Buffer.alloc(0)
    let status = 0
    let closed = false
    const frames: ServerFrame[] = []
    const all: Record<string, string | null> = {
      Host: `127.0.0.1:${String(port)}`,
      Upgrade: 'websocket',
      Connection: 'Upgrade',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      'Sec-WebSocket-Version': '13',
      ...headers,
    }
    const handle: RawWs = {
      get status() {
        return status
      },
      frames: () => frames,
      closed: () => closed,
      write: (bytes) => socket.write(bytes),
      async closeCode(timeoutMs = 5_000) {
        await waitFor(() => closed, { what: 'the server closed the WebSocket', timeoutMs })
        const close = frames.find((f) => f.opcode === 0x8)
        return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : null
      },
      destroy: () => socket.destroy(),
    }
    socket.on('error', () => undefined)
    socket.on('close', () => {
      closed = true
      if (status === 0) resolve(handle)
    })
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      if (status === 0) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        status = Number(buf.subarray(0, end).toString('latin1').split(' ')[1] ?? 0)
        buf = buf.subarray(end + 4)
        resolve(handle)
        if (status !== 101) return
      }
      const { frames: got, rest } = readFrames(buf)
      frames.push(...got)
      buf = rest
    })
    socket.once('connect', () => {
      const lines = Object.entries(all)
        .filter((e): e is [string, string] => e[1] !== null)
        .map(([k, v]) => `${k}: ${v}`)
      socket.write(`GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`)
    })
    setTimeout(() => {
      if (status === 0 && !closed) reject(new Error(`no handshake answer for ${path}`))
    }, 5_000).unref()
  })
}
