/**
 * HTTP/1.1 by hand over a TCP socket, for requests no well-behaved client sends (a multipart body
 * without a boundary or cut off mid-way, repeated headers, a body that stops): write the bytes,
 * read the reply (status, headers, body by Content-Length or until the server closes).
 */
import { connect } from 'node:net'

export interface RawReply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string
  /** The body as JSON, or null. */
  readonly json: unknown
}

function parse(buf: Buffer): RawReply | null {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return null
  const head = buf.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(head[0]?.split(' ')[1] ?? 0)
  const headers: Record<string, string> = {}
  for (const line of head.slice(1)) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  const length = headers['content-length']
  const rest = buf.subarray(end + 4)
  if (length !== undefined && rest.length < Number(length)) return null
  const body = (length === undefined ? rest : rest.subarray(0, Number(length))).toString()
  let json: unknown = null
  try {
    json = JSON.parse(body) as unknown
  } catch {
    // not JSON
  }
  return { status, headers, body, json }
}

/**
 * Send `head` (the request line and headers, without the blank line) and `body`; with `cutAfter`
 * only that many body bytes are sent and the connection is then closed (a client gone mid-way).
 * Resolves with the reply, or null when none came (within `timeoutMs`, or before the close).
 */
export function rawRequest(opts: {
  readonly port: number
  readonly head: string
  readonly body?: Buffer | string
  readonly cutAfter?: number
  readonly timeoutMs?: number
}): Promise<RawReply | null> {
  return new Promise((resolve) => {
    const socket = connect(opts.port, '127.0.0.1')
    let seen = Buffer.alloc(0)
    let done = false
    const finish = (reply: RawReply | null): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve(reply)
    }
    const timer = setTimeout(() => finish(parse(seen)), opts.timeoutMs ?? 10_000)
    socket.on('error', () => finish(parse(seen)))
    socket.on('close', () => finish(parse(seen)))
    socket.on('data', (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk])
      const reply = parse(seen)
      if (reply && reply.headers['content-length'] !== undefined) finish(reply)
    })
    socket.once('connect', () => {
      const body = Buffer.from(opts.body ?? '')
      socket.write(`${opts.head}\r\n\r\n`)
      if (opts.cutAfter === undefined) {
        socket.write(body)
        return
      }
      socket.write(body.subarray(0, opts.cutAfter), () => {
        setTimeout(() => socket.destroy(), 50)
      })
    })
  })
}

/** A multipart/form-data body: fields, then files, with the closing boundary unless `open`. */
export function multipartBody(opts: {
  readonly boundary: string
  readonly fields?: readonly (readonly [string, string])[]
  readonly files?: readonly (readonly [string, string, Buffer])[]
  readonly open?: boolean
}): Buffer {
  const parts: Buffer[] = []
  for (const [name, value] of opts.fields ?? []) {
    parts.push(
      Buffer.from(
        `--${opts.boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
      ),
    )
  }
  for (const [name, filename, bytes] of opts.files ?? []) {
    parts.push(
      Buffer.from(
        `--${opts.boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
      ),
      bytes,
      Buffer.from('\r\n'),
    )
  }
  if (!opts.open) parts.push(Buffer.from(`--${opts.boundary}--\r\n`))
  return Buffer.concat(parts)
}
