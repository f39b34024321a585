import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { clientAddress } from '../../gateway/caller-address.js'
import { capConnectionsPerAddress } from '../../gateway/connection-cap.js'
import { silentLogger } from '../../lib/logger.js'
import { clientIp, connectFrom, loopbackAddressesMissing } from '../helpers/loopback-addresses.js'
import { waitFor } from '../helpers/wait-for.js'

const missing = await loopbackAddressesMissing()

/** An HTTP server that answers every request `ok` and counts the bytes it read. */
async function cappedServer(max: number) {
  const read = { bytes: 0 }
  const server = createServer((_req, res) => res.end('ok'))
  server.on('connection', (socket: Socket) => {
    socket.once('close', () => (read.bytes += socket.bytesRead))
  })
  const cap = capConnectionsPerAddress(server, { max, log: silentLogger() })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  )
  const url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`
  return { url, cap, read }
}

/** Resolves with what the server sent before the socket closed. */
function untilClosed(socket: Socket): Promise<string> {
  let got = ''
  socket.on('data', (chunk: Buffer) => (got += chunk.toString()))
  socket.on('error', () => undefined)
  return new Promise((resolve) => socket.once('close', () => resolve(got)))
}

const REQUEST = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'

describe.skipIf(missing !== null)('the per-address connection cap', () => {
  it('closes a connection over the cap at once, before reading it, and only for that address', async () => {
    const { url, cap, read } = await cappedServer(2)
    const held = [await connectFrom(url, clientIp(0)), await connectFrom(url, clientIp(0))]
    for (const socket of held) {
      onTestFinished(() => {
        socket.destroy()
      })
    }
    await waitFor(() => cap.countOf(clientIp(0)) === 2, { what: 'two connections counted' })
    const bytesBefore = read.bytes

    const over = await connectFrom(url, clientIp(0))
    const closed = untilClosed(over)
    over.write(REQUEST + 'x'.repeat(10_000))
    expect(await closed).toBe('') // no answer: closed as it was accepted
    expect(read.bytes).toBe(bytesBefore) // and nothing of it was read
    expect(cap.countOf(clientIp(0))).toBe(2)

    // Another address is not held up.
    const other = await connectFrom(url, clientIp(1))
    other.write(REQUEST)
    const [reply] = (await once(other, 'data')) as [Buffer]
    expect(reply.toString()).toMatch(/^HTTP\/1\.1 200/)
    other.destroy()

    // A connection that closes frees its place.
    const first = held[0]
    if (first === undefined) throw new Error('no first connection')
    first.destroy()
    await waitFor(() => cap.countOf(clientIp(0)) === 1, { what: 'the closed one uncounted' })
    const again = await connectFrom(url, clientIp(0))
    onTestFinished(() => {
      again.destroy()
    })
    again.write(REQUEST)
    const [answer] = (await once(again, 'data')) as [Buffer]
    expect(answer.toString()).toMatch(/^HTTP\/1\.1 200/)
  })

  it('forgets an address once its last connection has closed', async () => {
    const { url, cap } = await cappedServer(3)
    const sockets = await Promise.all([0, 1, 2].map((n) => connectFrom(url, clientIp(n))))
    await waitFor(() => cap.addresses === 3, { what: 'three addresses counted' })
    for (const socket of sockets) socket.destroy()
    await waitFor(() => cap.addresses === 0, { what: 'all addresses forgotten' })
  })
})

describe('client addresses', () => {
  it('spells an IPv4-mapped IPv6 address as IPv4, and keeps others as they are', () => {
    expect(clientAddress({ remoteAddress: '::ffff:10.1.2.3' })).toBe('10.1.2.3')
    expect(clientAddress({ remoteAddress: '10.1.2.3' })).toBe('10.1.2.3')
    expect(clientAddress({ remoteAddress: '2001:db8::1' })).toBe('2001:db8::1')
    expect(clientAddress({ remoteAddress: undefined })).toBe('unknown')
  })
})
