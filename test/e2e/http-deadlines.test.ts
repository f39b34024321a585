import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, expect, it } from 'vitest'
import { md5Buffer } from '../../lib/hash.js'
import { uploadMultipart } from '../../lib/http-client.js'
import { media } from '../helpers/pc.js'
import { startTestGateway } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'

const IDLE_MS = 400

/** A raw connection that sends `text` and then nothing; resolves with how long until it closed. */
async function goQuiet(url: string, text: string): Promise<number> {
  const { hostname, port } = new URL(url)
  const socket: Socket = connect(Number(port), hostname)
  await once(socket, 'connect')
  const started = performance.now()
  socket.write(text)
  socket.resume()
  await once(socket, 'close')
  return performance.now() - started
}

describe('HTTP deadlines', () => {
  it('closes a request that goes quiet, in headers or in the body, after the idle time', async () => {
    const dir = await tempDir('deadlines')
    const gateway = await startTestGateway(dir, {
      headersTimeoutMs: 1_000,
      idleTimeoutMs: IDLE_MS,
    })
    const halfHeaders = 'POST /api/heygem/submit HTTP/1.1\r\nHost: relay\r\n'
    const halfBody =
      'POST /api/heygem/submit HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n' +
      'Content-Length: 1000\r\n\r\n{"audio_hash":'
    const [headersClosed, bodyClosed] = await Promise.all([
      goQuiet(gateway.url, halfHeaders),
      goQuiet(gateway.url, halfBody),
    ])
    expect(headersClosed).toBeLessThan(5_000)
    expect(bodyClosed).toBeLessThan(5_000)
    // Honest requests are still answered.
    const health = await fetch(`${gateway.url}/api/heygem/health`)
    expect(health.status).toBe(200)
  })

  it('lets an upload that keeps sending take many times the idle time', async () => {
    const dir = await tempDir('slow-upload')
    const gateway = await startTestGateway(dir, { idleTimeoutMs: IDLE_MS })
    const bytes = media('slow', 'video', 64 * 1024)
    const chunks = Array.from({ length: 16 }, (_, i) => bytes.subarray(i * 4096, (i + 1) * 4096))
    const tail = bytes.subarray(16 * 4096)
    async function* slowly(): AsyncGenerator<Buffer> {
      for (const chunk of chunks) {
        yield chunk
        await sleep(IDLE_MS / 2) // steady: never quiet for the idle time, 8 idle times in all
      }
      yield tail
    }
    const started = performance.now()
    const reply = await uploadMultipart({
      url: `${gateway.url}/api/heygem/upload_file`,
      source: Readable.from(slowly()),
      size: bytes.length,
      fields: { hash: md5Buffer(bytes), ext: '.mp4' },
      fileField: 'file',
      filename: 'avatar.mp4',
    })
    expect(performance.now() - started).toBeGreaterThan(4 * IDLE_MS)
    expect(reply.status).toBe(200)
    expect(reply.body).toMatchObject({ code: 0, data: { hash: md5Buffer(bytes) } })
  })
})
