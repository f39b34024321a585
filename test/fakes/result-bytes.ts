/**
 * The fake GPU services' "rendered video": deterministic bytes derived from the two input md5s, so a
 * test can tell that a downloaded result is the one made for those inputs. It starts like an mp4 (an
 * `ftyp` box, then an `mdat` box header) and continues with an md5 chain seeded by both hashes.
 */
import { createHash } from 'node:crypto'

export const DEFAULT_RESULT_SIZE = 64 * 1024
const CHUNK_SIZE = 64 * 1024

/** ftyp (32 bytes: major brand isom, minor 0x200, four compatible brands) + mdat header (8 bytes). */
function mp4Head(size: number): Buffer {
  const ftyp = Buffer.concat([
    Buffer.from([0, 0, 0, 32]),
    Buffer.from('ftypisom', 'latin1'),
    Buffer.from([0, 0, 2, 0]),
    Buffer.from('isomiso2avc1mp41', 'latin1'),
  ])
  const mdatSize = size - ftyp.length
  const mdat = Buffer.alloc(8)
  // A box size of 0 means "to the end of the file" (ISO/IEC 14496-12 §4.2).
  mdat.writeUInt32BE(mdatSize > 0xffffffff ? 0 : Math.max(mdatSize, 0), 0)
  mdat.write('mdat', 4, 'latin1')
  return Buffer.concat([ftyp, mdat])
}

function md5(data: Buffer | string): Buffer {
  return createHash('md5').update(data).digest()
}

/** The result bytes in chunks, so a server can stream a large result without holding it. */
export function* fakeResultChunks(
  audioHash: string,
  videoHash: string,
  size: number = DEFAULT_RESULT_SIZE,
): Generator<Buffer, void, undefined> {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad result size: ${size}`)
  const head = mp4Head(size)
  let block = md5(`${audioHash.toLowerCase()}:${videoHash.toLowerCase()}`)
  let blockPos = 0
  let offset = 0
  while (offset < size) {
    const n = Math.min(CHUNK_SIZE, size - offset)
    const chunk = Buffer.allocUnsafe(n)
    let filled =
      offset < head.length ? head.copy(chunk, 0, offset, Math.min(head.length, offset + n)) : 0
    while (filled < n) {
      if (blockPos === block.length) {
        block = md5(block)
        blockPos = 0
      }
      const copied = block.copy(
        chunk,
        filled,
        blockPos,
        Math.min(block.length, blockPos + n - filled),
      )
      filled += copied
      blockPos += copied
    }
    offset += n
    yield chunk
  }
}

/** The whole result for these inputs (default 64 KiB). */
export function fakeResultBytes(
  audioHash: string,
  videoHash: string,
  size: number = DEFAULT_RESULT_SIZE,
): Buffer {
  return Buffer.concat([...fakeResultChunks(audioHash, videoHash, size)])
}
