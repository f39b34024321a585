/**
 * The bridge's HTTP side of the gateway (docs/design.md §6): input files streamed out of the gateway's
 * pool, results streamed back in, each checked by md5 on both ends.
 */
import { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'
import { pipeline } from 'node:stream/promises'
import type { InputSource, ResultStream } from './adapters/types.js'
import { Md5Tap } from '../lib/hash.js'
import { HttpError, readEnvelope, uploadRaw } from '../lib/http-client.js'
import { RELAY_PATHS, ResultStored, type FileRef } from '../protocol/index.js'

export class GatewayFiles implements InputSource {
  readonly #base: string
  readonly #headers: Record<string, string>

  /** `token`: this GPU's bearer token for the gateway's file endpoints (null: none). */
  constructor(gatewayUrl: string, token: string | null) {
    this.#base = gatewayUrl
    this.#headers = token === null ? {} : { authorization: `Bearer ${token}` }
  }

  async open(file: FileRef, signal: AbortSignal): Promise<Readable> {
    const target = new URL(RELAY_PATHS.file(file.hash), this.#base).toString()
    let res: Response
    try {
      res = await fetch(target, { signal, headers: this.#headers })
    } catch (err) {
      throw new HttpError(`cannot fetch input ${file.hash} from the gateway`, 0, null, null, err)
    }
    if (res.status !== 200 || !res.body) {
      const text = await res.text()
      throw new HttpError(
        `gateway has no input ${file.hash}: HTTP ${res.status}`,
        res.status,
        null,
        text,
      )
    }
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>)
  }

  /** Stream a result to the gateway; resolves with what the gateway stored, verified by md5. */
  async storeResult(taskId: string, attempt: number, result: ResultStream): Promise<FileRef> {
    const target = new URL(RELAY_PATHS.result(taskId), this.#base)
    target.searchParams.set('attempt', String(attempt))
    target.searchParams.set('ext', result.ext)
    const tap = new Md5Tap()
    const piping = pipeline(result.stream, tap)
    piping.catch(() => undefined) // awaited below; a failed upload destroys it first
    let reply
    try {
      ;[, reply] = await Promise.all([
        piping,
        uploadRaw({
          url: target.toString(),
          source: tap,
          size: result.size,
          headers: this.#headers,
        }),
      ])
    } catch (err) {
      result.stream.destroy()
      tap.destroy()
      throw err
    }
    const stored = readEnvelope(target.toString(), reply.status, reply.body, ResultStored)
    const local = tap.result()
    if (stored.hash !== local.hash || stored.size !== local.size) {
      throw new Error(
        `result of ${taskId} arrived as ${stored.hash}/${stored.size}, sent ${local.hash}/${local.size}`,
      )
    }
    return stored
  }
}
