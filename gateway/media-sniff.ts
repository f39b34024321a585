/**
 * What an upload is, from its first bytes (file-type), not from its name: the gateway takes any
 * audio or video container (the PC app accepts whatever the user picks: .avi, .mkv, .mov, .mp3…)
 * and refuses empty or non-media files before they can take a queue slot.
 *
 * `MediaSniffer` is a pass-through stream that holds back only the first SAMPLE_BYTES, decides,
 * then lets the rest flow. Once it has seen that the bytes are not media it drops the rest, so a
 * refused upload writes no more than a sample to disk.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { fileTypeFromBuffer } from 'file-type'

/** file-type reads at most this much to decide ("reasonable detection size"). */
const SAMPLE_BYTES = 4100

/** Containers file-type names `application/*` that are audio or video all the same. */
const MEDIA_APPLICATION_MIMES: ReadonlySet<string> = new Set([
  'application/ogg',
  'application/vnd.ms-asf',
  'application/mxf',
])

export type Sniffed =
  | { readonly kind: 'media'; readonly mime: string; readonly ext: string }
  | { readonly kind: 'empty' }
  | { readonly kind: 'other'; readonly mime: string | null }

export function isMediaMime(mime: string): boolean {
  return mime.startsWith('audio/') || mime.startsWith('video/') || MEDIA_APPLICATION_MIMES.has(mime)
}

export class MediaSniffer extends Transform {
  #held: Buffer[] = []
  #heldBytes = 0
  #result: Sniffed | null = null

  /** What the bytes are; `empty` until the stream has ended with none. */
  result(): Sniffed {
    return this.#result ?? { kind: 'empty' }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.#result !== null) {
      done(null, this.#result.kind === 'media' ? chunk : undefined)
      return
    }
    this.#held.push(chunk)
    this.#heldBytes += chunk.length
    if (this.#heldBytes < SAMPLE_BYTES) {
      done()
      return
    }
    this.#decide().then(() => done(), done)
  }

  override _flush(done: TransformCallback): void {
    if (this.#result !== null || this.#heldBytes === 0) {
      done()
      return
    }
    this.#decide().then(() => done(), done)
  }

  async #decide(): Promise<void> {
    const held = Buffer.concat(this.#held)
    this.#held = []
    this.#heldBytes = 0
    const type = await fileTypeFromBuffer(held.subarray(0, SAMPLE_BYTES))
    this.#result =
      type !== undefined && isMediaMime(type.mime)
        ? { kind: 'media', mime: type.mime, ext: `.${type.ext}` }
        : { kind: 'other', mime: type?.mime ?? null }
    if (this.#result.kind === 'media') this.push(held)
  }
}
