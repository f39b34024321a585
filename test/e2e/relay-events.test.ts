import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { submitFresh, finalStatus } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { openSse, stalledStream, type SseReader } from '../helpers/sse.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { TaskEvent } from '../../protocol/index.js'

const ADMIN = 'test-admin-token'
const IDLE_MS = 1_500
const eventsUrl = (base: string, query = ''): string => `${base}/api/relay/events${query}`

function eventsOf(reader: SseReader): TaskEvent[] {
  return reader.messages.map((m) => {
    const event = TaskEvent.parse(JSON.parse(m.data))
    // The SSE id is the outbox id, what Last-Event-ID resumes from.
    expect(m.id).toBe(String(event.id))
    return event
  })
}

describe('the task event stream (GET /api/relay/events)', () => {
  it('resumed with Last-Event-ID after a gateway restart, misses nothing and repeats nothing', async () => {
    const dir = await tempDir('relay-events')
    const first = await startTestGateway(dir, { adminToken: ADMIN })
    const before = await openSse(eventsUrl(first.url, '?last_event_id=0'), { token: ADMIN })
    expect(before.status).toBe(200)
    expect(before.headers['content-type']).toMatch(/^text\/event-stream/)
    // Three tasks while no GPU is on: three submits.
    const early = [await submitFresh(first.url), await submitFresh(first.url)]
    await waitFor(() => eventsOf(before).length >= 2, { what: 'two submit events' })
    const seen = eventsOf(before)
    before.close()
    const lastSeen = seen.at(-1)?.id ?? 0
    // What happens while nobody listens: one more submit, then a restart.
    const missed = await submitFresh(first.url)
    await first.close()

    const second = await startTestGateway(dir, { adminToken: ADMIN })
    const gpu = await startTestGpu(dir, 100)
    await startTestBridge(dir, { gateway: second, gpu })
    const late = await submitFresh(second.url)
    const ids = [...early, missed, late]
    for (const id of ids) expect((await finalStatus(second.url, id)).status).toBe('done')

    const after = await openSse(eventsUrl(second.url), {
      token: ADMIN,
      lastEventId: String(lastSeen),
    })
    const doneCount = (): number => eventsOf(after).filter((e) => e.kind === 'done').length
    await waitFor(() => doneCount() === ids.length, { what: 'every done in the resumed stream' })
    const resumed = eventsOf(after)

    // Exactly the outbox after the last id seen: nothing missed, nothing repeated, in order.
    const all = second.outbox.after(0, 10_000)
    expect(resumed.map((e) => e.id)).toEqual(all.filter((e) => e.id > lastSeen).map((e) => e.id))
    expect([...seen, ...resumed].map((e) => e.id)).toEqual(all.map((e) => e.id))
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length)
    // Every task's life is in it: submitted, claimed, done, each once.
    for (const id of ids) {
      const kinds = [...seen, ...resumed].filter((e) => e.taskId === id).map((e) => e.kind)
      for (const kind of ['submitted', 'claimed', 'done'] as const) {
        expect(
          kinds.filter((k) => k === kind),
          `${id} ${kind}`,
        ).toHaveLength(1)
      }
    }
    // Without Last-Event-ID a client gets what happens from now on.
    const live = await openSse(eventsUrl(second.url), { token: ADMIN })
    // An id beyond the newest (a database restored from a backup) continues from now too.
    const ahead = await openSse(eventsUrl(second.url), { token: ADMIN, lastEventId: '999999' })
    expect(ahead.status).toBe(200)
    const next = await submitFresh(second.url)
    await waitFor(() => eventsOf(live).some((e) => e.taskId === next), { what: 'live submit' })
    await waitFor(() => eventsOf(ahead).some((e) => e.taskId === next), { what: 'after a far id' })
    expect(eventsOf(live).every((e) => e.id > (all.at(-1)?.id ?? 0))).toBe(true)
  })

  it('is for admins only and refuses a malformed Last-Event-ID', async () => {
    const dir = await tempDir('relay-events-auth')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN, apiSecret: 'pc-secret' })
    const pc = await openSse(eventsUrl(gateway.url), { token: 'pc-secret' })
    expect(pc.status).toBe(403)
    await pc.ended
    expect(JSON.parse(pc.body())).toMatchObject({ code: 403 })
    const nobody = await openSse(eventsUrl(gateway.url))
    expect(nobody.status).toBe(401)
    const bad = await openSse(eventsUrl(gateway.url), { token: ADMIN, lastEventId: 'abc' })
    expect(bad.status).toBe(400)
  })
})

describe('a client of the event stream that stops reading', () => {
  it('is left behind and cut off, while another client gets every event', async () => {
    const dir = await tempDir('relay-events-stall')
    const gateway = await startTestGateway(dir, { adminToken: ADMIN, idleTimeoutMs: IDLE_MS })
    // 40,000 events of ~600 bytes (24 MB: far more than a socket buffers), written in one
    // transaction by a second connection to the gateway's database.
    const count = 40_000
    const db = new Database(join(dir, 'gateway', 'gateway.sqlite'))
    const insert = db.prepare(
      `INSERT INTO task_events (task_id, kind, at, rc_at, attempt, from_state, to_state, gpu_id, data)
       VALUES (?, 'progress', ?, ?, 1, 'processing', 'processing', 'gpu-1', ?)`,
    )
    const note = JSON.stringify({ progress: 50, note: 'x'.repeat(480) })
    db.transaction(() => {
      for (let i = 0; i < count; i++) insert.run(randomUUID(), Date.now(), Date.now(), note)
    })()
    db.close()

    const stalled = await stalledStream(
      gateway.url,
      `GET /api/relay/events?last_event_id=0 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN}\r\n\r\n`,
    )
    const reader = await openSse(eventsUrl(gateway.url, '?last_event_id=0'), { token: ADMIN })
    await waitFor(() => reader.messages.length === count, {
      what: 'every event at the reading client',
      timeoutMs: 30_000,
    })
    expect(eventsOf(reader).map((e) => e.id)).toEqual(
      gateway.outbox.after(0, count).map((e) => e.id),
    )
    // The stalled one took nothing for longer than the idle timeout (what is under test is that
    // timeout, so the test waits it out): the gateway has cut it. A paused socket notices that
    // only when it reads again; had it not been cut, reading would just resume the stream.
    await delay(Math.max(0, IDLE_MS + 1_000 - (performance.now() - stalled.since)))
    stalled.resume()
    await waitFor(stalled.cut, { what: 'the stalled client cut off', timeoutMs: 10_000 })
  })
})
