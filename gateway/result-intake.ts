/**
 * What a GPU's result hand-over may be (docs/design.md §6): its size is capped while it streams,
 * and the content type it is served with comes from a short list of video types (anything else is
 * served as plain bytes, never as a page a browser would run).
 */
import { Transform, type TransformCallback } from 'node:stream'
import { appError, type AppError } from '../lib/errors.js'

const VIDEO_TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mov': 'video/quicktime',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.avi': 'video/x-msvideo',
  '.flv': 'video/x-flv',
})

/** The content type a result with this extension is stored and served with. */
export function resultContentType(ext: string): string {
  return VIDEO_TYPES[ext.toLowerCase()] ?? 'application/octet-stream'
}

export function resultTooLarge(maxBytes: number): AppError {
  return appError('RESULT_TOO_LARGE', { params: { maxBytes } })
}

/** Passes bytes through until more than `maxBytes` went by, then fails with RESULT_TOO_LARGE. */
export class ResultLimit extends Transform {
  readonly #max: number
  #seen = 0

  constructor(maxBytes: number) {
    super()
    this.#max = maxBytes
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length
    if (this.#seen > this.#max) {
      done(resultTooLarge(this.#max))
      return
    }
    done(null, chunk)
  }
}
