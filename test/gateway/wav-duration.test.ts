import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { probeWavMs, wavDurationMs } from '../../gateway/wav-duration.js'
import { mp3Bytes, mp4Bytes, wavOfSeconds } from '../helpers/media.js'
import { tempDir } from '../helpers/temp-dir.js'

/** A RIFF chunk: id, little-endian length, body (padded to even). */
function chunk(id: string, body: Buffer): Buffer {
  const size = Buffer.alloc(4)
  size.writeUInt32LE(body.length)
  return Buffer.concat([Buffer.from(id), size, body, Buffer.alloc(body.length % 2)])
}

function fmt(o: { format: number; sampleRate: number; byteRate: number }): Buffer {
  const b = Buffer.alloc(16)
  b.writeUInt16LE(o.format, 0)
  b.writeUInt16LE(1, 2)
  b.writeUInt32LE(o.sampleRate, 4)
  b.writeUInt32LE(o.byteRate, 8)
  b.writeUInt16LE(2, 12)
  b.writeUInt16LE(16, 14)
  return chunk('fmt ', b)
}

function wave(...chunks: Buffer[]): Buffer {
  const inner = Buffer.concat([Buffer.from('WAVE'), ...chunks])
  const size = Buffer.alloc(4)
  size.writeUInt32LE(inner.length)
  return Buffer.concat([Buffer.from('RIFF'), size, inner])
}

describe('the length of a WAV, from its header', () => {
  it('is the data chunk over the byte rate, past chunks before it', () => {
    const pcm = fmt({ format: 1, sampleRate: 16_000, byteRate: 32_000 })
    const bytes = wave(chunk('LIST', Buffer.alloc(33)), pcm, chunk('data', Buffer.alloc(80_000)))
    expect(wavDurationMs(bytes, bytes.length)).toBe(2_500)
    const made = wavOfSeconds(7)
    expect(wavDurationMs(made, made.length)).toBe(7_000)
  })

  it('is what the file holds when the data length was never filled in or the file is cut short', () => {
    const pcm = fmt({ format: 1, sampleRate: 16_000, byteRate: 32_000 })
    const streamed = wave(pcm, chunk('data', Buffer.alloc(64_000)))
    streamed.writeUInt32LE(0xffffffff, streamed.length - 64_000 - 4)
    expect(wavDurationMs(streamed, streamed.length)).toBe(2_000)
    const whole = wave(pcm, chunk('data', Buffer.alloc(64_000)))
    const cut = whole.subarray(0, whole.length - 32_000)
    expect(wavDurationMs(cut, cut.length)).toBe(1_000)
  })

  it('counts sample frames for a compressed WAV (fact chunk)', () => {
    const adpcm = fmt({ format: 0x11, sampleRate: 8_000, byteRate: 4_055 })
    const frames = Buffer.alloc(4)
    frames.writeUInt32LE(24_000)
    const bytes = wave(adpcm, chunk('fact', frames), chunk('data', Buffer.alloc(12_000)))
    expect(wavDurationMs(bytes, bytes.length)).toBe(3_000)
  })

  it('is unknown for other containers and for a header without a byte rate', () => {
    expect(wavDurationMs(mp3Bytes(), 4_110)).toBeNull()
    expect(wavDurationMs(mp4Bytes(), 4_110)).toBeNull()
    const noRate = wave(
      fmt({ format: 1, sampleRate: 0, byteRate: 0 }),
      chunk('data', Buffer.alloc(8)),
    )
    expect(wavDurationMs(noRate, noRate.length)).toBeNull()
    expect(wavDurationMs(Buffer.from('RIFF'), 4)).toBeNull()
  })

  it('is unknown for a header that lies: a byte rate of 1, an odd sample rate, a billion frames', () => {
    const data = chunk('data', Buffer.alloc(64_000))
    const slow = wave(fmt({ format: 1, sampleRate: 16_000, byteRate: 1 }), data)
    expect(wavDurationMs(slow, slow.length)).toBeNull() // would be 17 hours of audio
    // A PCM byte rate that is not sample rate × block align (2 here): 32 times too long.
    const stretched = wave(fmt({ format: 1, sampleRate: 16_000, byteRate: 1_000 }), data)
    expect(wavDurationMs(stretched, stretched.length)).toBeNull()
    const odd = wave(fmt({ format: 1, sampleRate: 1, byteRate: 32_000 }), data)
    expect(wavDurationMs(odd, odd.length)).toBeNull()
    const frames = Buffer.alloc(4)
    frames.writeUInt32LE(4_000_000_000)
    const many = wave(
      fmt({ format: 0x11, sampleRate: 8_000, byteRate: 4_055 }),
      chunk('fact', frames),
      data,
    )
    expect(wavDurationMs(many, many.length)).toBeNull() // would be 139 hours
  })

  it('is read from a file on disk', async () => {
    const dir = await tempDir('wav-duration')
    const path = join(dir, 'speech.wav')
    await writeFile(path, wavOfSeconds(3.5))
    expect(await probeWavMs(path)).toBe(3_500)
    await writeFile(path, mp3Bytes())
    expect(await probeWavMs(path)).toBeNull()
  })
})
