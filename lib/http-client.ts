/**
 * Small HTTP client helpers shared by the bridge and the PC adapter: JSON requests that read the
 * `{code, msg, data}` envelope, and streamed multipart / raw uploads with a known Content-Length
 * (no whole file in memory; Flask and the gateway both get a plain length-delimited body).
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import type { Readable } from 'node:stream'
import { randomBytes } from 'node:crypto'
import type { z } from 'zod'

/** A reply whose envelope says `code != 0`, or an HTTP failure. `status` 0: no HTTP answer at all. */
export class HttpError extends Error {
  readonly status: number
  readonly code: number | null
  readonly body: unknown
  /**
   * Certain the server never received the request (connection refused, host unknown), so sending
   * it again cannot do the work twice. False for a timeout or a connection cut mid-way.
   */
  readonly notDelivered: boolean
  /** `reply`: the HTTP status (0: no answer), the envelope's code and the body as read. */
  constructor(
    message: string,
    reply: { readonly status: number; readonly code: number | null; readonly body: unknown },
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause })
    const { status, code, body } = reply
    this.name = 'HttpError'
    this.status = status
    this.code = code
    this.body = body
    this.notDelivered = status === 0 && NOT_DELIVERED.has(systemCode(cause) ?? '')
  }
}

/** Connection errors raised before a single byte of the request left this machine. */
const NOT_DELIVERED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
])

function systemCode(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; e instanceof Error && depth < 4; depth++) {
    if ('code' in e && typeof e.code === 'string') return e.code
    e = e.cause
  }
  return undefined
}

export interface JsonRequest {
  readonly method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  readonly body?: unknown
  readonly headers?: Readonly<Record<string, string>>
  readonly timeoutMs?: number
  readonly signal?: AbortSignal
}

/** Send JSON, read the envelope, return `data` parsed by `schema`. Throws HttpError otherwise. */
export async function requestEnvelope<T>(
  url: string,
  schema: z.ZodType<T>,
  req: JsonRequest = {},
): Promise<T> {
  const json = await requestJson(url, req)
  return readEnvelope(url, json, schema)
}

/** Send JSON and return the raw parsed body and status (no envelope reading). */
export async function requestJson(
  url: string,
  req: JsonRequest = {},
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers }
  const init: RequestInit = {
    method: req.method ?? (req.body === undefined ? 'GET' : 'POST'),
    headers,
    signal:
      req.signal === undefined
        ? AbortSignal.timeout(req.timeoutMs ?? 30_000)
        : AbortSignal.any([req.signal, AbortSignal.timeout(req.timeoutMs ?? 30_000)]),
  }
  if (req.body !== undefined) {
    headers['content-type'] = 'application/json'
    init.body = JSON.stringify(req.body)
  }
  let res: Response
  try {
    res = await fetch(url, init)
  } catch (err) {
    throw new HttpError(
      `cannot reach ${url}: ${causeText(err)}`,
      { status: 0, code: null, body: null },
      err,
    )
  }
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // not JSON: keep the text for the error
  }
  return { status: res.status, body }
}

export function readEnvelope<T>(
  url: string,
  reply: { readonly status: number; readonly body: unknown },
  schema: z.ZodType<T>,
): T {
  const { status, body } = reply
  const envelope = body as { code?: unknown; msg?: unknown; data?: unknown } | null
  const code = typeof envelope?.code === 'number' ? envelope.code : null
  const msg = typeof envelope?.msg === 'string' ? envelope.msg : `HTTP ${status}`
  if (status >= 400 || code !== 0) {
    throw new HttpError(msg, { status, code, body })
  }
  const parsed = schema.safeParse(envelope?.data)
  if (!parsed.success) {
    throw new HttpError(`unexpected reply from ${url}: ${parsed.error.message}`, {
      status,
      code,
      body,
    })
  }
  return parsed.data
}

export interface StreamUpload {
  readonly url: string
  readonly method?: 'POST' | 'PUT'
  readonly source: Readable
  /** Exact byte length of `source`; null sends it chunked. */
  readonly size: number | null
  readonly headers?: Readonly<Record<string, string>>
  readonly timeoutMs?: number
}

/** POST a stream as a raw body. */
export function uploadRaw(up: StreamUpload): Promise<{ status: number; body: unknown }> {
  return send(up.url, {
    method: up.method ?? 'POST',
    headers: { 'content-type': 'application/octet-stream', ...up.headers },
    length: up.size,
    parts: [up.source],
    timeoutMs: up.timeoutMs,
  })
}

export interface MultipartUpload extends StreamUpload {
  readonly fields: Readonly<Record<string, string>>
  readonly fileField: string
  readonly filename: string
}

/** POST multipart/form-data: the text fields first, then the file, streamed. */
export function uploadMultipart(up: MultipartUpload): Promise<{ status: number; body: unknown }> {
  const boundary = `----gpu-relay-${randomBytes(12).toString('hex')}`
  const head = Object.entries(up.fields)
    .map(
      ([name, value]) =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`,
    )
    .join('')
  const fileHead =
    `--${boundary}\r\nContent-Disposition: form-data; name="${up.fileField}"; filename="${up.filename.replace(/"/g, '')}"\r\n` +
    'Content-Type: application/octet-stream\r\n\r\n'
  const tail = `\r\n--${boundary}--\r\n`
  const pre = Buffer.from(head + fileHead)
  const post = Buffer.from(tail)
  return send(up.url, {
    method: up.method ?? 'POST',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, ...up.headers },
    length: up.size === null ? null : pre.length + up.size + post.length,
    parts: [pre, up.source, post],
    timeoutMs: up.timeoutMs,
  })
}

interface Outgoing {
  readonly method: string
  readonly headers: Record<string, string>
  /** The body's exact length (Content-Length); null sends it chunked. */
  readonly length: number | null
  readonly parts: (Buffer | Readable)[]
  readonly timeoutMs: number | undefined
}

function send(
  url: string,
  { method, headers, length, parts, timeoutMs = 10 * 60_000 }: Outgoing,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url)
    const requester = target.protocol === 'https:' ? httpsRequest : httpRequest
    const allHeaders = length === null ? headers : { ...headers, 'content-length': String(length) }
    const req = requester(target, { method, headers: allHeaders }, (res) => {
      readBody(res).then(resolve, reject)
    })
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`upload to ${url} timed out`)))
    req.on('error', (err) => {
      reject(
        new HttpError(
          `upload to ${url} failed: ${err.message}`,
          { status: 0, code: null, body: null },
          err,
        ),
      )
    })
    const writeNext = (index: number): void => {
      const part = parts[index]
      if (part === undefined) {
        req.end()
        return
      }
      if (Buffer.isBuffer(part)) {
        req.write(part)
        writeNext(index + 1)
        return
      }
      part.on('error', (err) => req.destroy(err))
      part.on('end', () => writeNext(index + 1))
      part.pipe(req, { end: false })
    }
    writeNext(0)
  })
}

async function readBody(res: IncomingMessage): Promise<{ status: number; body: unknown }> {
  const chunks: Buffer[] = []
  for await (const chunk of res) chunks.push(chunk as Buffer)
  const text = Buffer.concat(chunks).toString('utf8')
  try {
    return { status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }
  } catch {
    return { status: res.statusCode ?? 0, body: text }
  }
}

function causeText(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
    return `${err.message}${cause}`
  }
  return String(err)
}
