/**
 * Staged bytes (docs/design.md §3.9, point 3): an upload's file is written into the pool's staging folder while it
 * arrives; on every path that does not commit it, it is removed at once, not at the next start:
 * the client gone mid-file or after the file part, over the size limit, a bad hash field, a
 * full disk (full-disk.test.ts), the gateway shutting down.
 */
import { randomBytes } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { GatewayConfig } from '../../gateway/config.js'
import { stagedFiles } from '../helpers/full-disk.js'
import { media } from '../helpers/pc.js'
import { startTestGateway } from '../helpers/relay.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const KIB = 1024

interface RawUpload {
  readonly socket: Socket
  /** Everything the server answered so far. */
  readonly reply: () => string
  readonly closed: Promise<void>
}

/**
 * A multipart upload written by hand onto a raw socket: the fields, then the head of the `file`
 * part. The caller writes the file bytes (and the rest) itself, or goes away.
 */
async function startRawUpload(
  url: string,
  fields: Record<string, string>,
  declaredBodyBytes: number,
): Promise<RawUpload & { boundary: string }> {
  const { hostname, port } = new URL(url)
  const boundary = `----disk${randomBytes(8).toString('hex')}`
  const socket = connect(Number(port), hostname)
  onTestFinished(() => {
    socket.destroy()
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  let reply = ''
  socket.on('data', (chunk: Buffer) => (reply += chunk.toString('latin1')))
  socket.on('error', () => undefined)
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  let head = ''
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n`
  head += 'Content-Type: application/octet-stream\r\n\r\n'
  socket.write(
    `POST /api/heygem/upload_file HTTP/1.1\r\nHost: ${hostname}\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\n` +
      `Content-Length: ${String(declaredBodyBytes)}\r\n\r\n${head}`,
  )
  return { socket, boundary, reply: () => reply, closed }
}

/** The staged file's size once one exists (the upload under way). */
async function stagedSize(dataDir: string): Promise<number> {
  const [name] = await stagedFiles(dataDir)
  if (name === undefined) return -1
  return (await stat(join(dataDir, 'files', 'tmp', name))).size
}

async function gatewayWith(prefix: string, overrides: Partial<GatewayConfig> = {}) {
  const dir = await tempDir(prefix)
  const gateway = await startTestGateway(dir, { uploadMaxBytes: 256 * KIB, ...overrides })
  return { gateway, dataDir: join(dir, 'gateway') }
}

describe('staged upload bytes', () => {
  it('are removed when the client goes away in the middle of the file', async () => {
    const { gateway, dataDir } = await gatewayWith('stage-gone-mid')
    const file = media('gone-mid', 'video', 200 * KIB)
    const up = await startRawUpload(gateway.url, { hash: 'x', ext: '.mp4' }, 400 * KIB)
    up.socket.write(file.subarray(0, 100 * KIB))
    await waitFor(async () => (await stagedSize(dataDir)) >= 64 * KIB, { what: 'bytes staged' })
    up.socket.destroy()
    await waitFor(async () => (await stagedFiles(dataDir)).length === 0, {
      what: 'the staging folder empty',
    })
  })

  it('are removed when the client goes away after the whole file part, before the body ends', async () => {
    const { gateway, dataDir } = await gatewayWith('stage-gone-after')
    const file = media('gone-after', 'video', 100 * KIB)
    const up = await startRawUpload(gateway.url, { hash: 'x', ext: '.mp4' }, 400 * KIB)
    // The file part complete, then the head of another part that never ends.
    up.socket.write(Buffer.concat([file, Buffer.from(`\r\n--${up.boundary}\r\n`)]))
    up.socket.write('Content-Disposition: form-data; name="note"\r\n\r\nand then')
    await waitFor(async () => (await stagedSize(dataDir)) === file.length, {
      what: 'the whole file staged',
    })
    up.socket.destroy()
    await waitFor(async () => (await stagedFiles(dataDir)).length === 0, {
      what: 'the staging folder empty',
    })
  })

  it('are removed when a body goes on past the size limit (413, connection closed)', async () => {
    const { gateway, dataDir } = await gatewayWith('stage-too-large')
    const up = await startRawUpload(gateway.url, { hash: 'x', ext: '.mp4' }, 8 * 1024 * KIB)
    const file = media('too-large', 'video', 4 * 1024 * KIB)
    up.socket.write(file)
    await up.closed
    expect(up.reply()).toMatch(/^HTTP\/1\.1 413 /)
    expect(up.reply()).toContain('FILE_TOO_LARGE')
    await waitFor(async () => (await stagedFiles(dataDir)).length === 0, {
      what: 'the staging folder empty',
    })
  })

  it('are removed when the file is cut off at the size limit within the grace (413)', async () => {
    const { gateway, dataDir } = await gatewayWith('stage-cut')
    const file = media('cut', 'video', 300 * KIB)
    const tail = `\r\n--BOUNDARY--\r\n`
    const exact = await startRawUpload(
      gateway.url,
      { hash: 'x', ext: '.mp4' },
      bodyLength({ hash: 'x', ext: '.mp4' }, file.length, tail.length),
    )
    exact.socket.write(Buffer.concat([file, Buffer.from(tail.replace('BOUNDARY', exact.boundary))]))
    await waitFor(() => /\r\n\r\n\{.*\}/s.test(exact.reply()), { what: 'the reply' })
    expect(exact.reply()).toMatch(/^HTTP\/1\.1 413 /)
    expect(await stagedFiles(dataDir)).toEqual([])
  })

  it('are removed when the hash field is refused (missing or too long)', async () => {
    const { gateway, dataDir } = await gatewayWith('stage-hash')
    for (const fields of [{ ext: '.mp4' }, { hash: 'h'.repeat(201), ext: '.mp4' }]) {
      const file = media(`hash-${String(Object.keys(fields).length)}`, 'video', 100 * KIB)
      const tail = '\r\n--BOUNDARY--\r\n'
      const up = await startRawUpload(
        gateway.url,
        fields,
        bodyLength(fields, file.length, tail.length),
      )
      up.socket.write(Buffer.concat([file, Buffer.from(tail.replace('BOUNDARY', up.boundary))]))
      await waitFor(() => /\r\n\r\n\{.*\}/s.test(up.reply()), { what: 'the reply' })
      expect(up.reply()).toMatch(/^HTTP\/1\.1 400 /)
      expect(await stagedFiles(dataDir)).toEqual([])
    }
  })

  it('are removed when the gateway shuts down in the middle of an upload', async () => {
    const { gateway, dataDir } = await gatewayWith('stage-shutdown')
    const file = media('shutdown', 'video', 200 * KIB)
    const up = await startRawUpload(gateway.url, { hash: 'x', ext: '.mp4' }, 400 * KIB)
    up.socket.write(file.subarray(0, 100 * KIB))
    await waitFor(async () => (await stagedSize(dataDir)) >= 64 * KIB, { what: 'bytes staged' })
    await gateway.close()
    expect(await stagedFiles(dataDir)).toEqual([])
  })
})

/** The exact body length of `startRawUpload`'s head, a file of `fileBytes` and a tail. */
function bodyLength(fields: Record<string, string>, fileBytes: number, tailBytes: number): number {
  const boundary = `----disk${'0'.repeat(16)}`
  let head = ''
  for (const [name, value] of Object.entries(fields)) {
    head += `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`
  }
  head += `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="v.mp4"\r\n`
  head += 'Content-Type: application/octet-stream\r\n\r\n'
  return Buffer.byteLength(head) + fileBytes + tailBytes - 'BOUNDARY'.length + boundary.length
}
