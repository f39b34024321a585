import { createHash, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'

/** A pass-through stream that computes the md5 and size of what flows through it. */
export class Md5Tap extends Transform {
  readonly #hash: Hash = createHash('md5')
  #size = 0

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#hash.update(chunk)
    this.#size += chunk.length
    done(null, chunk)
  }

  /** Call once the stream has ended. */
  result(): { hash: string; size: number } {
    return { hash: this.#hash.digest('hex'), size: this.#size }
  }
}

/** md5 and size of a file, streamed. */
export async function md5File(path: string): Promise<{ hash: string; size: number }> {
  const tap = new Md5Tap()
  tap.resume()
  await pipeline(createReadStream(path), tap)
  return tap.result()
}

export function md5Buffer(data: Buffer | string): string {
  return createHash('md5').update(data).digest('hex')
}
