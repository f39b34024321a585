/**
 * The bounds of gateway/ws-progress.ts on a bare HTTP server with a stub progress source: a reader
 * that stops reading is skipped, then cut, instead of growing the send buffer; the total cap.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { describe, expect, it, onTestFinished } from 'vitest'
import WebSocket from 'ws'
import { attachProgressSockets, type ProgressSocketOptions } from '../../gateway/ws-progress.js'
import { silentLogger } from '../../lib/logger.js'
import { waitFor } from '../helpers/wait-for.js'

/** A server whose every task is known and changes on each look (a new, large message each time). */
async function start(options: ProgressSocketOptions, messageBytes: number) {
  const server = createServer((_req, res) => res.writeHead(404).end())
  let looks = 0
  const sockets = attachProgressSockets(
    server,
    {
      log: silentLogger(),
      apiSecret: null,
      progressOf: (taskId) => {
        looks += 1
        return {
          task_id: taskId,
          status: 'synthesizing',
          progress: 50,
          message: `${looks}`.padEnd(messageBytes, '.'),
        }
      },
    },
    options,
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => {
    await sockets.close()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws/progress/`
  return { sockets, url }
}

function connect(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url)
  onTestFinished(() => {
    socket.terminate()
  })
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(socket))
    socket.once('error', reject)
  })
}

describe('progress sockets', () => {
  it('skips pushes to a reader that stopped reading, then cuts it, without queueing them', async () => {
    const { sockets, url } = await start(
      { intervalMs: 10, maxBufferedBytes: 64 * 1024, stalledMs: 300 },
      256 * 1024,
    )
    const reader = await connect(`${url}${randomUUID()}`)
    const closed = new Promise<number>((resolve) => reader.once('close', resolve))
    reader.pause() // stops reading from its TCP socket: the kernel buffers fill, then ws' does
    await waitFor(() => sockets.size === 0, { what: 'the stalled reader cut', timeoutMs: 15_000 })
    reader.resume()
    expect(await closed).toBe(1006)
  })

  it('refuses upgrades over the total cap with 503', async () => {
    const { url } = await start({ maxSockets: 2 }, 10)
    await connect(`${url}${randomUUID()}`)
    await connect(`${url}${randomUUID()}`)
    const status = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${url}${randomUUID()}`)
      socket.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0)
        socket.terminate()
      })
      socket.once('error', () => undefined)
    })
    expect(status).toBe(503)
  })
})
