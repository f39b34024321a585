/**
 * The outgoing cap tells a slow reader from a stuck one (docs/design.md, "Hostile and slow MQTT
 * clients"): over MQTT_MAX_OUTGOING_BYTES a client has a grace period to keep taking bytes, a
 * stuck one is dropped when it runs out, and anyone is dropped at once past 16 times the limit.
 */
import { Duplex } from 'node:stream'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  HARD_CEILING_FACTOR,
  MQTT_STALL_GRACE_MS,
  capOutgoingBytes,
} from '../../broker/slow-clients.js'
import { silentLogger } from '../../lib/logger.js'
import { waitFor } from '../helpers/wait-for.js'

const MAX_BYTES = 1024 * 1024
const CHUNK_BYTES = 4 * 1024

/**
 * A stream whose reader takes `bytesPerTick` every 100 ms (0: never), like a socket on a slow
 * link: a write completes only once the reader has taken it.
 */
function slowSink(bytesPerTick: number): { stream: Duplex; taken: () => number } {
  const pending: { bytes: number; done: () => void }[] = []
  let taken = 0
  const stream = new Duplex({
    read() {
      // Nothing comes back from this client.
    },
    write(chunk: Buffer, _encoding, done) {
      pending.push({ bytes: chunk.length, done: () => done() })
    },
  })
  let budget = 0
  const tick = setInterval(() => {
    budget += bytesPerTick
    while (pending[0] && pending[0].bytes <= budget) {
      const next = pending.shift()
      if (!next) break
      budget -= next.bytes
      taken += next.bytes
      next.done()
    }
  }, 100)
  onTestFinished(() => {
    clearInterval(tick)
    stream.destroy()
  })
  return { stream, taken: () => taken }
}

function capped(sink: { stream: Duplex }): { closedAt: () => number | null } {
  let closedAt: number | null = null
  const start = performance.now()
  sink.stream.once('close', () => (closedAt = performance.now() - start))
  capOutgoingBytes({
    stream: sink.stream,
    outgoingBytes: () => sink.stream.writableLength,
    maxBytes: MAX_BYTES,
    describe: () => ({ clientId: 'test' }),
    log: silentLogger(),
  })
  return { closedAt: () => closedAt }
}

function burst(stream: Duplex, totalBytes: number): void {
  for (let sent = 0; sent < totalBytes; sent += CHUNK_BYTES) stream.write(Buffer.alloc(CHUNK_BYTES))
}

describe('the outgoing cap', () => {
  it('keeps a reader that takes 640 KB/s through a 3 MB burst, over the limit for longer than the grace period', async () => {
    const sink = slowSink(64 * 1024)
    const cap = capped(sink)
    const total = 3 * 1024 * 1024
    const start = performance.now()
    let overLimitMs = 0
    burst(sink.stream, total)
    await waitFor(
      () => {
        if (sink.stream.writableLength > MAX_BYTES) overLimitMs = performance.now() - start
        return sink.taken() === total || cap.closedAt() !== null
      },
      { timeoutMs: 15_000, intervalMs: 20, what: `the 3 MB burst taken (${String(sink.taken())})` },
    )
    console.log(
      `slow reader: 3 MB taken in ${(performance.now() - start).toFixed(0)} ms, over the 1 MiB ` +
        `limit for ${overLimitMs.toFixed(0)} ms (grace ${String(MQTT_STALL_GRACE_MS)} ms); disconnected: ${String(cap.closedAt() !== null)}`,
    )
    expect(cap.closedAt()).toBeNull()
    expect(sink.taken()).toBe(total)
    expect(overLimitMs).toBeGreaterThan(MQTT_STALL_GRACE_MS)
  }, 20_000)

  it('drops a reader that takes nothing once the grace period is over, not before', async () => {
    const sink = slowSink(0)
    const cap = capped(sink)
    burst(sink.stream, 2 * MAX_BYTES)
    expect(sink.stream.destroyed).toBe(false)
    await waitFor(() => cap.closedAt() !== null, {
      timeoutMs: 10_000,
      what: 'the stuck reader dropped',
    })
    console.log(`stuck reader: dropped ${(cap.closedAt() ?? 0).toFixed(0)} ms after falling behind`)
    expect(cap.closedAt()).toBeGreaterThanOrEqual(MQTT_STALL_GRACE_MS - 50)
    expect(cap.closedAt()).toBeLessThan(MQTT_STALL_GRACE_MS + 1_000)
  })

  it('drops any reader at once past 16 times the limit', () => {
    const sink = slowSink(64 * 1024)
    capped(sink)
    burst(sink.stream, HARD_CEILING_FACTOR * MAX_BYTES)
    expect(sink.stream.destroyed).toBe(false)
    sink.stream.write(Buffer.alloc(CHUNK_BYTES))
    expect(sink.stream.destroyed).toBe(true)
  })
})
