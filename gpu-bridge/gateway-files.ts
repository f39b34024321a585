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
import { RELAY_PATHS, ResultAlreadyStored, ResultStored, type FileRef } from '../protocol/index.js'

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
      throw new HttpError(
        `cannot fetch input ${file.hash} from the gateway`,
        { status: 0, code: null, body: null },
        err,
      )
    }
    if (res.status !== 200 || !res.body) {
      const text = await res.text()
      throw new HttpError(`gateway has no input ${file.hash}: HTTP ${res.status}`, {
        status: res.status,
        code: null,
        body: text,
      })
    }
    return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>)
  }

  /**
   * Stream a result to the gateway; resolves with what the gateway stored, verified by md5. A
   * gateway that already holds this attempt's result (our earlier reply was lost) answers 409
   * RESULT_ALREADY_STORED naming it: that is the result. Any other refusal is an HttpError.
   */
  async storeResult(taskId: string, attempt: number, result: ResultStream): Promise<FileRef> {
    const target = new URL(RELAY_PATHS.result(taskId), this.#base)
    target.searchParams.set('attempt', String(attempt))
    target.searchParams.set('ext', result.ext)
    const tap = new Md5Tap()
    const piping = pipeline(result.stream, tap)
    piping.catch(() => undefined) // awaited below; a failed upload destroys it first
    let reply
    try {
      // The gateway may answer before it read everything (a refusal): the reply decides.
      reply = await uploadRaw({
        url: target.toString(),
        source: tap,
        size: result.size,
        headers: this.#headers,
      })
    } catch (err) {
      result.stream.destroy()
      tap.destroy()
      throw err
    }
    if (reply.status !== 200) {
      result.stream.destroy()
      tap.destroy()
      const earlier = ResultAlreadyStored.safeParse(reply.body)
      if (reply.status === 409 && earlier.success) {
        const { hash, ext, size } = earlier.data.data
        return { hash, ext, size }
      }
    }
    const stored = readEnvelope(target.toString(), reply, ResultStored)
    await piping
    const local = tap.result()
    if (stored.hash !== local.hash || stored.size !== local.size) {
      throw new ResultCorrupted(
        `result of ${taskId} arrived as ${stored.hash}/${stored.size}, sent ${local.hash}/${local.size}`,
      )
    }
    return stored
  }
}

/** The gateway stored other bytes than we sent: the hand-over is tried again. */
export class ResultCorrupted extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ResultCorrupted'
  }
}
