/**
 * Hostile HTTP clients against a gateway with API_SECRET (docs/design.md §3.9, point 1): bodies without
 * credentials are not read, connections over the per-address cap are closed as they come, half-sent
 * headers are cut at the headers deadline, and honest callers are answered all along.
 */
import { describe, expect, it } from 'vitest'
import { startTestGateway } from '../helpers/relay.js'
import { hostile, watchServerSockets, type Hostile } from '../helpers/hostile-http.js'
import { clientIp, loopbackAddressesMissing } from '../helpers/loopback-addresses.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'

const missing = await loopbackAddressesMissing()

const API_SECRET = 'hostile-test-secret'
const PC = { authorization: `Bearer ${API_SECRET}` }
const CAP = 8
/** Addresses sending bodies without credentials, and addresses sending half their headers. */
const BODY_IPS = 20
const HALF_IPS = 10
/** A little under the JSON limit (1mb), so only authentication can refuse it early. */
const DECLARED = 1_040_000
const SENT = 1_000_000

const bodyHead =
  'POST /api/heygem/submit HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n' +
  `Content-Length: ${String(DECLARED)}\r\n\r\n`
const halfHead = 'POST /api/heygem/submit HTTP/1.1\r\nHost: relay\r\nContent-Ty'

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN
const mb = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1)

describe.skipIf(missing !== null)('hostile HTTP clients', () => {
  it('reads no body without credentials, closes connections over the cap at once, and answers honest requests throughout', async () => {
    const gw = await startTestGateway(await tempDir('http-hostile'), {
      apiSecret: API_SECRET,
      maxConnectionsPerIp: CAP,
      headersTimeoutMs: 1_000,
      idleTimeoutMs: 60_000, // nothing below is closed for idleness
    })
    const server = watchServerSockets(gw.url)
    const honest: number[] = []
    const attack = { on: true }
    const honestLoop = (async () => {
      for (let i = 0; i < 20 || attack.on; i++) {
        const started = performance.now()
        const reply =
          i % 2 === 0
            ? await fetch(`${gw.url}/api/heygem/queue`, { headers: PC })
            : await fetch(`${gw.url}/api/heygem/check_files`, {
                method: 'POST',
                headers: { ...PC, 'content-type': 'application/json' },
                body: JSON.stringify({ files: [{ hash: 'a'.repeat(32), ext: '.wav' }] }),
              })
        await reply.arrayBuffer()
        honest.push(performance.now() - started)
        expect(reply.status).toBe(200)
      }
    })()

    // What JavaScript holds (the heap and Buffers), measured in-process; the real-process abuse
    // suite measures a gateway's RSS.
    const held = (): number => {
      const m = process.memoryUsage()
      return m.heapUsed + m.arrayBuffers
    }
    const rssBefore = process.memoryUsage().rss
    const heldBefore = held()
    let peakHeld = heldBefore
    let peakRss = rssBefore
    const sample = (): void => {
      peakHeld = Math.max(peakHeld, held())
      peakRss = Math.max(peakRss, process.memoryUsage().rss)
    }
    const sampler = setInterval(sample, 20)

    // Half-sent headers, up to the cap of each address; then more from the same addresses.
    const halves: Hostile[] = []
    const over: Hostile[] = []
    for (let n = BODY_IPS; n < BODY_IPS + HALF_IPS; n++) {
      const ip = clientIp(n)
      for (let i = 0; i < CAP; i++) halves.push(await hostile(gw.url, ip, halfHead))
      await waitFor(() => server.acceptedFrom(ip) === CAP, { what: `${ip}'s connections` })
      for (let i = 0; i < 3; i++)
        over.push(await hostile(gw.url, ip, { head: bodyHead, bodyBytes: SENT }))
    }
    // ~1 MB bodies without credentials, up to the cap of each address.
    const bodies: Hostile[] = []
    for (let n = 0; n < BODY_IPS; n++) {
      for (let i = 0; i < CAP; i++)
        bodies.push(await hostile(gw.url, clientIp(n), { head: bodyHead, bodyBytes: SENT }))
    }
    await Promise.all(bodies.map((b) => b.sent))
    sample()
    // Bodies are not held: far less than one of them per connection.
    const grew = peakHeld - heldBefore
    expect(grew).toBeLessThan(64 * 1024 * 1024)
    await waitFor(() => bodies.every((b) => b.isClosed()), {
      timeoutMs: 20_000,
      what: 'every body without credentials closed by the server',
    })
    const replies = await Promise.all(bodies.map((b) => b.closed))
    const overReplies = await Promise.all(over.map((o) => o.closed))
    const halfReplies = await Promise.all(halves.map((h) => h.closed))
    clearInterval(sampler)
    attack.on = false
    await honestLoop

    // Refused unread: 401, the agreed body, Connection: close, and the server read little of it.
    for (const reply of replies) {
      expect(reply).toMatch(/^HTTP\/1\.1 401 /)
      expect(reply).toMatch(/\r\nconnection: close\r\n/i)
      expect(reply).toContain('"code":401,"msg":"鉴权失败"')
    }
    const read = bodies.map((b) => server.readFrom(b.ip, b.port) ?? Number.NaN)
    const maxRead = Math.max(...read)
    expect(maxRead).toBeLessThan(256 * 1024)
    // Over the cap: closed as accepted, not a byte read, no answer.
    expect(overReplies).toEqual(over.map(() => ''))
    expect(server.destroyedAtAccept).toEqual(over.map(() => 0))
    // Half headers: cut at the headers deadline (Node answers 408), never served.
    for (const reply of halfReplies)
      expect(reply === '' || reply.startsWith('HTTP/1.1 408 ')).toBe(true)

    const sorted = [...honest].sort((a, b) => a - b)
    console.log(
      `${String(bodies.length)} bodies without credentials (${String(SENT)} B each, server read at most ${String(maxRead)} B of one), ` +
        `${String(halves.length)} half headers, ${String(over.length)} over the cap of ${String(CAP)}; ` +
        `${String(honest.length)} honest requests all answered: p50 ${percentile(sorted, 0.5).toFixed(1)} ms, ` +
        `p99 ${percentile(sorted, 0.99).toFixed(1)} ms, max ${(sorted.at(-1) ?? 0).toFixed(1)} ms; ` +
        `heap + buffers grew at most ${mb(grew)} MB, RSS ${mb(peakRss - rssBefore)} MB (${mb(bodies.length * SENT)} MB sent)`,
    )
  })
})
