/**
 * Small media files for tests: real container headers (RIFF/WAVE, ISO-BMFF ftyp, RIFF/AVI, EBML,
 * ID3 + MPEG frame), so content sniffing (file-type) takes them for audio or video, followed by a
 * label and random bytes so every call has its own md5. No decoder could play them; no test needs one.
 */
import { randomBytes } from 'node:crypto'
import { extname } from 'node:path'

export type MediaKind = 'audio' | 'video'

/** The label, then random bytes: what makes two files of one container differ. */
function payload(label: string, size: number): Buffer {
  return Buffer.concat([Buffer.from(label), randomBytes(Math.max(0, size))])
}

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32LE(n)
  return b
}

/** A RIFF file of `form` (WAVE, AVI ) whose first chunk is `first`, then the payload as `data`. */
function riff(form: string, first: Buffer, content: { label: string; size: number }): Buffer {
  const body = payload(content.label, content.size)
  const data = Buffer.concat([Buffer.from('data'), u32le(body.length), body])
  const inner = Buffer.concat([Buffer.from(form), first, data])
  return Buffer.concat([Buffer.from('RIFF'), u32le(inner.length), inner])
}

/** PCM WAVE: `fmt ` chunk (mono, 16 kHz, 16 bit), then the payload as the `data` chunk. */
export function wavBytes(label = 'wav', size = 4096): Buffer {
  const fmt = Buffer.alloc(16)
  fmt.writeUInt16LE(1, 0) // PCM
  fmt.writeUInt16LE(1, 2) // channels
  fmt.writeUInt32LE(16_000, 4) // sample rate
  fmt.writeUInt32LE(32_000, 8) // byte rate
  fmt.writeUInt16LE(2, 12) // block align
  fmt.writeUInt16LE(16, 14) // bits per sample
  return riff('WAVE', Buffer.concat([Buffer.from('fmt '), u32le(16), fmt]), { label, size })
}

/** WAV_BYTES_PER_S: what `wavBytes` plays per second (mono, 16 kHz, 16 bit). */
export const WAV_BYTES_PER_S = 32_000

/** A PCM WAVE that plays `seconds` (its own md5, like every file here). */
export function wavOfSeconds(seconds: number, label = 'wav'): Buffer {
  return wavBytes(label, Math.round(seconds * WAV_BYTES_PER_S) - Buffer.byteLength(label))
}

/** RIFF/AVI with an `hdrl` LIST first. */
export function aviBytes(label = 'avi', size = 4096): Buffer {
  const hdrl = Buffer.concat([Buffer.from('hdrl'), Buffer.alloc(8)])
  const list = Buffer.concat([Buffer.from('LIST'), u32le(hdrl.length), hdrl])
  return riff('AVI ', list, { label, size })
}

/** ISO-BMFF: an `ftyp` box with `brand`, then the payload as an `mdat` box. */
function isoBmff(brand: string, label: string, size: number): Buffer {
  const brands = Buffer.from(`${brand}\0\0\0\0${brand}isom`)
  const ftyp = Buffer.concat([u32be(8 + brands.length), Buffer.from('ftyp'), brands])
  const body = payload(label, size)
  return Buffer.concat([ftyp, u32be(8 + body.length), Buffer.from('mdat'), body])
}

export function mp4Bytes(label = 'mp4', size = 4096): Buffer {
  return isoBmff('isom', label, size)
}

/** QuickTime (.mov): brand `qt  `. */
export function movBytes(label = 'mov', size = 4096): Buffer {
  return isoBmff('qt  ', label, size)
}

/** AAC in MP4 (.m4a): brand `M4A `. */
export function m4aBytes(label = 'm4a', size = 4096): Buffer {
  return isoBmff('M4A ', label, size)
}

/** An EBML element: its id bytes, a one-byte size (under 127), its body. */
function ebml(id: number[], body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(id), Buffer.from([0x80 | body.length]), body])
}

/** Matroska (.mkv): EBML header with DocType `matroska`, then the payload. */
export function mkvBytes(label = 'mkv', size = 4096): Buffer {
  const header = Buffer.concat([
    ebml([0x42, 0x86], Buffer.from([1])), // EBMLVersion
    ebml([0x42, 0x82], Buffer.from('matroska')), // DocType
    ebml([0x42, 0x87], Buffer.from([4])), // DocTypeVersion
  ])
  return Buffer.concat([ebml([0x1a, 0x45, 0xdf, 0xa3], header), payload(label, size)])
}

/** MP3: an empty ID3v2.3 tag, then an MPEG-1 Layer III frame header and the payload. */
export function mp3Bytes(label = 'mp3', size = 4096): Buffer {
  const id3 = Buffer.from([0x49, 0x44, 0x33, 3, 0, 0, 0, 0, 0, 0])
  const frame = Buffer.from([0xff, 0xfb, 0x90, 0x64])
  return Buffer.concat([id3, frame, payload(label, size)])
}

/** Audio (WAVE) or video (MP4): what most tests upload as `.wav` and `.mp4`. */
export function mediaBytes(kind: MediaKind, label: string, size = 4096): Buffer {
  return kind === 'audio' ? wavBytes(label, size) : mp4Bytes(label, size)
}

const BY_EXT: Readonly<Record<string, (label: string, size: number) => Buffer>> = {
  '.wav': wavBytes,
  '.mp3': mp3Bytes,
  '.m4a': m4aBytes,
  '.mp4': mp4Bytes,
  '.mov': movBytes,
  '.avi': aviBytes,
  '.mkv': mkvBytes,
}

/** A file of the container its name says (WAVE when the name says none the helpers know). */
export function mediaForName(name: string, size = 4096): Buffer {
  const build = BY_EXT[extname(name).toLowerCase()] ?? wavBytes
  return build(name, size)
}
