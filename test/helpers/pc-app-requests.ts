/**
 * The parts of Python's `requests` and `json` that the PC app's behaviour hangs on, so the model in
 * pc-app.ts meets a reply the way the real app does: the `raise_for_status()` text, the exception
 * kinds the app branches on (and the words it searches their text for), `json=` bodies as
 * `json.dumps` writes them, multipart bodies as urllib3 encodes them, and Python's truthiness,
 * `dict.get` and `str()` where the app's display depends on them.
 */
import { randomBytes } from 'node:crypto'

export type RequestsErrorKind = 'connection' | 'timeout' | 'http' | 'json' | 'broken'

/** A `requests.exceptions.RequestException`; `message` is `str(e)` as Python prints it. */
export class RequestsError extends Error {
  readonly kind: RequestsErrorKind

  constructor(kind: RequestsErrorKind, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'RequestsError'
    this.kind = kind
  }
}

export interface PyMultipart {
  /** Form fields (requests' `data=`), sent before the file, in this order. */
  readonly fields: readonly (readonly [string, string])[]
  readonly file: { readonly field: string; readonly filename: string; readonly bytes: Buffer }
}

export interface PyRequest {
  readonly method: 'GET' | 'POST'
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  /** requests' `params=`: appended as a query string. */
  readonly params?: Readonly<Record<string, string>>
  /** requests' `json=`. */
  readonly json?: unknown
  readonly multipart?: PyMultipart
  /** requests' read timeout, in seconds; here it bounds the wait for the reply's headers. */
  readonly timeoutS: number
}

export interface PyResponse {
  readonly status: number
  readonly reason: string
  /** The final URL, as requests reports it in `raise_for_status()`. */
  readonly url: string
  readonly res: Response
}

const USER_AGENT = 'python-requests/2.32.3'

/** Send a request as requests does; network failures become `RequestsError`s with requests' text. */
export async function pyRequest(req: PyRequest): Promise<PyResponse> {
  const url = new URL(req.url)
  if (req.params) for (const [k, v] of Object.entries(req.params)) url.searchParams.append(k, v)
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT, Accept: '*/*' }
  let body: Buffer | undefined
  if (req.json !== undefined) {
    body = Buffer.from(pyJsonDumps(req.json), 'utf8')
    headers['Content-Type'] = 'application/json'
  } else if (req.multipart) {
    const encoded = encodeMultipart(req.multipart)
    body = encoded.body
    headers['Content-Type'] = encoded.contentType
  }
  Object.assign(headers, req.headers)
  const abort = new AbortController()
  const timer = setTimeout(() => {
    abort.abort()
  }, req.timeoutS * 1000)
  try {
    const res = await fetch(url, {
      method: req.method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: abort.signal,
    })
    return { status: res.status, reason: res.statusText, url: res.url, res }
  } catch (err) {
    throw networkError(url, err, abort.signal.aborted ? req.timeoutS : null)
  } finally {
    clearTimeout(timer)
  }
}

function networkError(url: URL, err: unknown, timedOutAfterS: number | null): RequestsError {
  const pool = `${url.protocol === 'https:' ? 'HTTPS' : 'HTTP'}ConnectionPool(host='${url.hostname}', port=${url.port || (url.protocol === 'https:' ? '443' : '80')})`
  if (timedOutAfterS !== null) {
    return new RequestsError(
      'timeout',
      `${pool}: Read timed out. (read timeout=${timedOutAfterS})`,
      {
        cause: err,
      },
    )
  }
  const code = causeCode(err)
  const message =
    code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH'
      ? `${pool}: Max retries exceeded with url: ${url.pathname}${url.search} (Caused by NewConnectionError('<urllib3.connection.HTTPConnection object>: Failed to establish a new connection: [Errno 111] Connection refused'))`
      : `('Connection aborted.', RemoteDisconnected('Remote end closed connection without response'))`
  return new RequestsError('connection', message, { cause: err })
}

function causeCode(err: unknown): string | null {
  const cause = err instanceof Error ? err.cause : null
  if (typeof cause === 'object' && cause !== null && 'code' in cause) return String(cause.code)
  return null
}

/** `Response.raise_for_status()`: 4xx and 5xx become an `HTTPError` with requests' exact text. */
export function raiseForStatus(r: PyResponse): void {
  let side: string | null = null
  if (r.status >= 400 && r.status < 500) side = 'Client'
  else if (r.status >= 500 && r.status < 600) side = 'Server'
  if (side !== null) {
    void r.res.body?.cancel()
    throw new RequestsError('http', `${r.status} ${side} Error: ${r.reason} for url: ${r.url}`)
  }
}

/** `Response.json()`: a body that is not JSON raises requests' `JSONDecodeError`. */
export async function pyJson(r: PyResponse): Promise<unknown> {
  const text = await r.res.text()
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new RequestsError('json', 'Expecting value: line 1 column 1 (char 0)', { cause: err })
  }
}

/** `json.dumps(value)` with its defaults: `", "` and `": "` separators, `ensure_ascii=True`. */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null'
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (typeof value === 'number') return String(value)
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(
      /[\u007f-\uffff]/g,
      (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
    )
  }
  if (Array.isArray(value)) return `[${value.map((v) => pyJsonDumps(v)).join(', ')}]`
  if (typeof value === 'object') {
    const entries = Object.entries(value).map(([k, v]) => `${pyJsonDumps(k)}: ${pyJsonDumps(v)}`)
    return `{${entries.join(', ')}}`
  }
  throw new TypeError(`Object of type ${typeof value} is not JSON serializable`)
}

/** urllib3's `encode_multipart_formdata`: 32-hex boundary, fields first, no part Content-Type. */
export function encodeMultipart(form: PyMultipart): { body: Buffer; contentType: string } {
  const boundary = randomBytes(16).toString('hex')
  const param = (v: string): string =>
    v.replaceAll('\n', '%0A').replaceAll('\r', '%0D').replaceAll('"', '%22')
  const parts: Buffer[] = []
  for (const [name, value] of form.fields) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\nContent-Disposition: form-data; name="${param(name)}"\r\n\r\n${value}\r\n`,
      ),
    )
  }
  const { field, filename, bytes } = form.file
  parts.push(
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="${param(field)}"; filename="${param(filename)}"\r\n\r\n`,
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  )
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` }
}

/** Python's name for a JSON value's type, for the texts of its TypeError and AttributeError. */
function pyTypeName(value: unknown): string {
  if (value === null || value === undefined) return 'NoneType'
  if (typeof value === 'string') return 'str'
  if (typeof value === 'boolean') return 'bool'
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float'
  return Array.isArray(value) ? 'list' : 'dict'
}

function isDict(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `value.get(key, fallback)`; a value that is not a dict raises Python's AttributeError. */
export function pyGet(value: unknown, key: string, fallback: unknown): unknown {
  if (!isDict(value)) {
    throw new TypeError(`'${pyTypeName(value)}' object has no attribute 'get'`)
  }
  return Object.hasOwn(value, key) ? value[key] : fallback
}

/** `value[key]`, raising Python's KeyError or TypeError. */
export function pyIndex(value: unknown, key: string): unknown {
  if (!isDict(value)) {
    throw new TypeError(`'${pyTypeName(value)}' object is not subscriptable`)
  }
  if (!Object.hasOwn(value, key)) throw new TypeError(`'${key}'`)
  return value[key]
}

/** Python's truthiness of a JSON value. */
export function pyTruthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0
  if (isDict(value)) return Object.keys(value).length > 0
  return Boolean(value)
}

/** `value == 0` in Python (False == 0 too). */
export function pyEqualsZero(value: unknown): boolean {
  return value === 0 || value === false
}

/** `value > 0` in Python: only numbers (and bools) compare with an int. */
export function pyGreaterThanZero(value: unknown): boolean {
  if (typeof value === 'number') return value > 0
  if (typeof value === 'boolean') return value
  throw new TypeError(`'>' not supported between instances of '${pyTypeName(value)}' and 'int'`)
}

/**
 * `str(value)` / an f-string of a JSON value. A JSON number is printed as JavaScript does, which
 * matches Python except for floats with no fraction (`12.0`), which JSON.parse cannot tell apart.
 */
export function pyStr(value: unknown): string {
  if (value === null || value === undefined) return 'None'
  if (typeof value === 'boolean') return value ? 'True' : 'False'
  if (typeof value === 'string') return value
  if (typeof value === 'number') return String(value)
  return pyJsonDumps(value).replaceAll('true', 'True').replaceAll('false', 'False')
}
