/**
 * How long a WAVE file plays, from its header: the RIFF chunks `fmt ` (byte rate) and `data`
 * (its length), and `fact` (sample frames) for compressed formats, where the byte rate is only an
 * average. Used for run-time estimates per second of audio (estimates.ts); other containers
 * (mp3, m4a…) are not parsed and stay unknown. A streamed WAV whose `data` length was never
 * filled in (0 or 0xFFFFFFFF) or that is cut short plays for what the file holds.
 */
import { open } from 'node:fs/promises'

/** The chunks before `data` (`LIST`, `bext`…) rarely take more than this. */
export const WAV_HEAD_BYTES = 64 * 1024

const PCM = 1
const UNKNOWN_LENGTH = 0xffffffff
/**
 * What a real recording has: a header outside these (a byte rate of 1, a billion frames) is a
 * lie that would stretch the estimate of every task queued behind it, so its length is unknown.
 */
const SAMPLE_RATES = { min: 8_000, max: 384_000 } as const
const MIN_BYTE_RATE = 1_000
export const WAV_MAX_MS = 4 * 60 * 60 * 1000

const plausible = (ms: number): number | null => (ms >= 0 && ms <= WAV_MAX_MS ? ms : null)

/** Milliseconds of audio in a WAVE file whose first bytes are `head`; null when it cannot tell. */
export function wavDurationMs(head: Buffer, fileSize: number): number | null {
  if (head.length < 12 || head.toString('latin1', 0, 4) !== 'RIFF') return null
  if (head.toString('latin1', 8, 12) !== 'WAVE') return null
  let byteRate = 0
  let sampleRate = 0
  let format = 0
  let blockAlign = 0
  let frames: number | null = null
  let offset = 12
  while (offset + 8 <= head.length) {
    const id = head.toString('latin1', offset, offset + 4)
    const size = head.readUInt32LE(offset + 4)
    const body = offset + 8
    if (id === 'fmt ' && body + 16 <= head.length) {
      format = head.readUInt16LE(body)
      sampleRate = head.readUInt32LE(body + 4)
      byteRate = head.readUInt32LE(body + 8)
      blockAlign = head.readUInt16LE(body + 12)
    } else if (id === 'fact' && body + 4 <= head.length) {
      frames = head.readUInt32LE(body)
    } else if (id === 'data') {
      if (sampleRate < SAMPLE_RATES.min || sampleRate > SAMPLE_RATES.max) return null
      if (format !== PCM && frames !== null) {
        return plausible(Math.round((frames / sampleRate) * 1000))
      }
      if (byteRate < MIN_BYTE_RATE) return null
      // PCM's byte rate is exact: one block per sample frame.
      if (format === PCM && byteRate !== sampleRate * blockAlign) return null
      const held = Math.max(0, fileSize - body)
      const bytes = size === 0 || size === UNKNOWN_LENGTH ? held : Math.min(size, held)
      return plausible(Math.round((bytes / byteRate) * 1000))
    }
    // Chunks are padded to an even length.
    offset = body + size + (size % 2)
  }
  return null
}

/** `wavDurationMs` of the file at `path` (its first WAV_HEAD_BYTES); null when not a WAV. */
export async function probeWavMs(path: string): Promise<number | null> {
  const file = await open(path, 'r')
  try {
    const { size } = await file.stat()
    const head = Buffer.alloc(Math.min(WAV_HEAD_BYTES, size))
    const { bytesRead } = await file.read(head, 0, head.length, 0)
    return wavDurationMs(head.subarray(0, bytesRead), size)
  } finally {
    await file.close()
  }
}
