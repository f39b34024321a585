/**
 * RelayClient: the PC side's typed view of the gateway's HTTP API (docs/design.md §7). Every reply is read
 * as the `{code, msg, data}` envelope and parsed with the protocol schemas; `code != 0` becomes an
 * HttpError carrying the server's own (Chinese) `msg`. Files go up and come down streamed.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { z } from 'zod'
import {
  HttpError,
  readEnvelope,
  requestEnvelope,
  requestJson,
  uploadMultipart,
  type JsonRequest,
} from '../lib/http-client.js'
import {
  LICENSE_HEADER,
  CheckFilesData,
  HEYGEM_PATHS,
  HealthReply,
  ProgressData,
  TASK_PATHS,
  TaskStatusData,
  TaskSubmitData,
  UploadFileData,
  type TaskSubmitRequest,
} from '../protocol/index.js'

export interface RelayClientOptions {
  /** The gateway, e.g. `http://127.0.0.1:8383` (a path prefix behind a proxy is kept). */
  readonly baseUrl: string
  /** Sent as `Authorization: Bearer <secret>` (the PC app's HEYGEM_API_SECRET). */
  readonly secret?: string
  /** Sent as `X-License-Key`: this client sees only its owner's tasks. */
  readonly licenseKey?: string
  /** Timeout of each JSON request; default 30 s. */
  readonly timeoutMs?: number
  /** Timeout of a whole upload or download; default 30 min. */
  readonly transferTimeoutMs?: number
}

export interface FileId {
  readonly hash: string
  readonly ext: string
}

const DEFAULT_TIMEOUT_MS = 30_000
const DEFAULT_TRANSFER_TIMEOUT_MS = 30 * 60_000

export class RelayClient {
  readonly baseUrl: string
  readonly #headers: Readonly<Record<string, string>>
  readonly #timeoutMs: number
  readonly #transferTimeoutMs: number

  constructor(options: RelayClientOptions) {
    const parsed = new URL(options.baseUrl)
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new TypeError(`服务器地址必须以 http:// 或 https:// 开头：${options.baseUrl}`)
    }
    this.baseUrl = options.baseUrl.replace(/\/+$/, '')
    this.#headers = {
      ...(options.secret === undefined || options.secret === ''
        ? {}
        : { authorization: `Bearer ${options.secret}` }),
      ...(options.licenseKey === undefined || options.licenseKey === ''
        ? {}
        : { [LICENSE_HEADER]: options.licenseKey }),
    }
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.#transferTimeoutMs = options.transferTimeoutMs ?? DEFAULT_TRANSFER_TIMEOUT_MS
  }

  /** The relay's health; the relay answers even while the GPU is off. */
  async health(): Promise<HealthReply> {
    const url = this.url(HEYGEM_PATHS.health)
    const reply = await this.#call(() =>
      requestJson(url, { headers: this.#headers, timeoutMs: this.#timeoutMs }),
    )
    // Throws with the server's msg when the status or `code` says it failed.
    readEnvelope(url, reply, z.unknown())
    const parsed = HealthReply.safeParse(reply.body)
    if (!parsed.success) {
      throw new HttpError(`unexpected reply from ${url}: ${parsed.error.message}`, {
        status: reply.status,
        code: null,
        body: reply.body,
      })
    }
    return parsed.data
  }

  /** md5 → already on the server? */
  checkFiles(files: readonly FileId[]): Promise<Record<string, boolean>> {
    return this.#json(HEYGEM_PATHS.checkFiles, CheckFilesData, {
      body: { files: files.map((f) => ({ hash: f.hash, ext: f.ext })) },
    })
  }

  /** Multipart `file`, `hash`, `ext`, streamed from disk. `hash_matched: false` → `hash` is the real one. */
  async uploadFile(path: string, file: FileId): Promise<UploadFileData> {
    const url = this.url(HEYGEM_PATHS.uploadFile)
    const { size } = await stat(path)
    const reply = await this.#call(() =>
      uploadMultipart({
        url,
        source: createReadStream(path),
        size,
        fields: { hash: file.hash, ext: file.ext },
        fileField: 'file',
        filename: basename(path),
        headers: this.#headers,
        timeoutMs: this.#transferTimeoutMs,
      }),
    )
    return readEnvelope(url, reply, UploadFileData)
  }

  submitTask(request: TaskSubmitRequest): Promise<TaskSubmitData> {
    return this.#json(TASK_PATHS.submit, TaskSubmitData, { body: request })
  }

  taskStatus(taskId: string): Promise<TaskStatusData> {
    return this.#json(`${TASK_PATHS.status}?${query({ task_id: taskId })}`, TaskStatusData)
  }

  progress(taskId: string): Promise<ProgressData> {
    return this.#json(`${HEYGEM_PATHS.progress}?${query({ task_id: taskId })}`, ProgressData)
  }

  /**
   * Stream the task's result to `outPath`: into a temporary file next to it, renamed when complete,
   * so `outPath` never holds a partial video.
   */
  async download(
    taskId: string,
    outPath: string,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<{ bytes: number }> {
    const url = this.url(`${HEYGEM_PATHS.download}?${query({ task_id: taskId })}`)
    const timeout = AbortSignal.timeout(this.#transferTimeoutMs)
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout
    const res = await this.#call(() => fetch(url, { headers: this.#headers, signal }))
    if (res.status !== 200 || res.body === null) {
      const text = await res.text()
      readEnvelope(
        url,
        { status: res.status === 200 ? 500 : res.status, body: parseJson(text) },
        z.unknown(),
      )
      throw new HttpError(`HTTP ${res.status}`, { status: res.status, code: null, body: text })
    }
    const expected = Number(res.headers.get('content-length') ?? NaN)
    const tmp = join(
      dirname(outPath),
      `.${basename(outPath)}.${randomBytes(6).toString('hex')}.part`,
    )
    try {
      await pipeline(Readable.fromWeb(res.body), createWriteStream(tmp))
      const bytes = (await stat(tmp)).size
      if (Number.isFinite(expected) && bytes !== expected) {
        throw new HttpError(`下载不完整：收到 ${bytes} 字节，应为 ${expected} 字节`, {
          status: 200,
          code: null,
          body: null,
        })
      }
      await rename(tmp, outPath)
      return { bytes }
    } catch (err) {
      await rm(tmp, { force: true })
      if (err instanceof HttpError || options.signal?.aborted === true) throw err
      const why = timeout.aborted ? '下载超时' : errorText(err)
      throw new HttpError(`下载中断：${why}`, { status: 0, code: null, body: null }, err)
    }
  }

  /** A GET of a gateway path with this client's credentials, the reply as fetch gives it. */
  get(
    path: string,
    init: { readonly headers?: Record<string, string>; readonly signal: AbortSignal },
  ): Promise<Response> {
    const headers = { ...this.#headers, ...init.headers }
    return this.#call(() => fetch(this.url(path), { headers, signal: init.signal }))
  }

  /** Absolute URL of a gateway path (or of a relative `result_url`). */
  url(path: string): string {
    return `${this.baseUrl}${path}`
  }

  #json<T>(path: string, schema: z.ZodType<T>, req: JsonRequest = {}): Promise<T> {
    const url = this.url(path)
    return this.#call(() =>
      requestEnvelope(url, schema, {
        ...req,
        headers: { ...this.#headers, ...req.headers },
        timeoutMs: req.timeoutMs ?? this.#timeoutMs,
      }),
    )
  }

  /** A request that got no HTTP answer at all says so in Chinese, naming the server. */
  async #call<T>(send: () => Promise<T>): Promise<T> {
    try {
      return await send()
    } catch (err) {
      if (err instanceof HttpError && err.status !== 0) throw err
      if (err instanceof Error && err.name === 'AbortError') throw err
      const why = isTimeout(err) ? '请求超时' : errorText(err)
      throw new HttpError(
        `无法连接 gpu-relay 网关（${this.baseUrl}）：${why}`,
        { status: 0, code: null, body: null },
        err,
      )
    }
  }
}

function isTimeout(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return (
    err.name === 'TimeoutError' || (err.cause instanceof Error && err.cause.name === 'TimeoutError')
  )
}

function query(params: Readonly<Record<string, string>>): string {
  return new URLSearchParams(params).toString()
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** The innermost cause's message: "connect ECONNREFUSED 127.0.0.1:8383" rather than "fetch failed". */
function errorText(err: unknown): string {
  let current = err
  while (current instanceof Error && current.cause instanceof Error) current = current.cause
  return current instanceof Error ? current.message : String(current)
}
