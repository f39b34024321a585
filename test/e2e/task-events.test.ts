import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { finalStatus, submitFresh } from '../helpers/pc.js'
import { startTestBridge, startTestGateway, startTestGpu } from '../helpers/relay.js'
import { openSse, stalledStream, type SseReader } from '../helpers/sse.js'
import { tempDir } from '../helpers/temp-dir.js'
import { waitFor } from '../helpers/wait-for.js'
import { TASK_PATHS, TaskStatusData } from '../../protocol/index.js'

const IDLE_MS = 1_500
const eventsUrl = (base: string, taskId: string, license = 'K'): string =>
  `${base}${TASK_PATHS.events}?task_id=${taskId}&license_key=${license}`

interface Received {
  readonly id: number | null
  readonly data: TaskStatusData
}

function received(reader: SseReader): Received[] {
  return reader.messages.map((m) => {
    expect(m.event).toBe('status')
    return {
      id: m.id === null ? null : Number(m.id),
      data: TaskStatusData.parse(JSON.parse(m.data)),
    }
  })
}

/** The states in the order seen, each run of one state once. */
function statesOf(messages: readonly Received[]): string[] {
  return messages.map((m) => m.data.status).filter((s, i, all) => s !== all[i - 1])
}

describe('the task event stream (GET /api/heygem/task/events)', () => {
  it('follows a task from queued through processing to done, then ends', async () => {
    const dir = await tempDir('task-events-run')
    const gateway = await startTestGateway(dir)
    const taskId = await submitFresh(gateway.url)
    const reader = await openSse(eventsUrl(gateway.url, taskId))
    expect(reader.status).toBe(200)
    expect(reader.headers['content-type']).toMatch(/^text\/event-stream/)
    await waitFor(() => reader.messages.length >= 1, { what: 'the first status' })
    const [first] = received(reader)
    // At the start: the task as the status API shows it, with the id to resume from.
    expect(first?.data).toMatchObject({ task_id: taskId, status: 'queued', queue_position: 1 })
    expect(first?.data.eta_seconds).toBeGreaterThan(0)
    expect(first?.data.msg).toContain('GPU')
    expect(first?.id).toBe(gateway.outbox.latestId())

    const gpu = await startTestGpu(dir, 1_500)
    await startTestBridge(dir, { gateway, gpu })
    // The terminal state ends the stream: the server closes it.
    await reader.ended
    const all = received(reader)
    expect(statesOf(all)).toEqual(['queued', 'processing', 'done'])
    const last = all.at(-1)
    expect(last?.data.result_url).toBe(`/api/heygem/download?task_id=${taskId}`)
    expect(last?.data.progress).toBe(100)
    const processing = all.filter((m) => m.data.status === 'processing').map((m) => m.data.progress)
    expect(processing.some((p) => p > 0 && p < 100)).toBe(true)
    expect([...processing].sort((a, b) => a - b)).toEqual(processing)
    // One message for each of the task's events after the first id, in order.
    const ids = all.flatMap((m) => (m.id === null ? [] : [m.id]))
    const timeline = gateway.outbox.ofTask(taskId).map((e) => e.id)
    expect(ids.slice(1)).toEqual(timeline.filter((id) => id > (first?.id ?? 0)))

    // A stream opened on a finished task says so once and ends.
    const late = await openSse(eventsUrl(gateway.url, taskId))
    await late.ended
    expect(received(late).map((m) => m.data.status)).toEqual(['done'])
  })

  it('resumed with Last-Event-ID misses none of the task’s events and repeats none', async () => {
    const dir = await tempDir('task-events-resume')
    const gateway = await startTestGateway(dir)
    const gpu = await startTestGpu(dir, 2_000)
    const taskId = await submitFresh(gateway.url)
    const before = await openSse(eventsUrl(gateway.url, taskId))
    await startTestBridge(dir, { gateway, gpu })
    await waitFor(() => received(before).some((m) => m.data.progress > 0), {
      what: 'some progress before the client goes away',
    })
    before.close()
    const seen = received(before).flatMap((m) => (m.id === null ? [] : [m.id]))
    const lastSeen = seen.at(-1) ?? 0
    expect((await finalStatus(gateway.url, taskId)).status).toBe('done')

    const after = await openSse(eventsUrl(gateway.url, taskId), { lastEventId: String(lastSeen) })
    await after.ended
    const resumed = received(after)
    const resumedIds = resumed.flatMap((m) => (m.id === null ? [] : [m.id]))
    const timeline = gateway.outbox.ofTask(taskId).map((e) => e.id)
    expect(resumedIds).toEqual(timeline.filter((id) => id > lastSeen))
    expect([...seen, ...resumedIds]).toEqual(timeline.filter((id) => id >= (seen[0] ?? 0)))
    expect(resumed.at(-1)?.data.status).toBe('done')

    // Resumed from the task's newest event: nothing to replay, the task as it is, then the end.
    const current = await openSse(eventsUrl(gateway.url, taskId), {
      lastEventId: String(timeline.at(-1) ?? 0),
    })
    await current.ended
    expect(received(current)).toHaveLength(1)
    expect(received(current)[0]).toMatchObject({ id: null, data: { status: 'done' } })
    const bad = await openSse(eventsUrl(gateway.url, taskId), { lastEventId: 'abc' })
    expect(bad.status).toBe(400)
  })

  it('answers another owner’s task and an unknown one with the same 404', async () => {
    const dir = await tempDir('task-events-owner')
    const gateway = await startTestGateway(dir, { adminToken: 'test-admin-token' })
    const taskId = await submitFresh(gateway.url, 'owner-a')
    const stranger = await openSse(eventsUrl(gateway.url, taskId, 'owner-b'))
    expect(stranger.status).toBe(404)
    await stranger.ended
    expect(JSON.parse(stranger.body())).toMatchObject({ data: { error: 'TASK_NOT_FOUND' } })
    const unknown = await openSse(eventsUrl(gateway.url, randomUUID()))
    expect(unknown.status).toBe(404)
    await unknown.ended
    expect(JSON.parse(unknown.body())).toEqual(JSON.parse(stranger.body()))
    // Its owner, and an admin, follow it.
    const owner = await openSse(eventsUrl(gateway.url, taskId, 'owner-a'))
    expect(owner.status).toBe(200)
    const admin = await openSse(`${gateway.url}${TASK_PATHS.events}?task_id=${taskId}`, {
      token: 'test-admin-token',
    })
    expect(admin.status).toBe(200)
  })

  it('refuses a caller’s stream over its limit with 429 until one of its streams closes', async () => {
    const dir = await tempDir('task-events-limit')
    const gateway = await startTestGateway(dir, {
      taskEvents: { maxPerCaller: 2, heartbeatMs: 5_000 },
    })
    const taskId = await submitFresh(gateway.url)
    const open = [
      await openSse(eventsUrl(gateway.url, taskId)),
      await openSse(eventsUrl(gateway.url, taskId)),
    ]
    expect(open.map((r) => r.status)).toEqual([200, 200])
    const third = await openSse(eventsUrl(gateway.url, taskId))
    expect(third.status).toBe(429)
    expect(third.headers['retry-after']).toBe('5')
    await third.ended
    const refusal = z.object({ code: z.number(), msg: z.string() }).loose()
    const body = refusal.parse(JSON.parse(third.body()))
    expect(body).toMatchObject({ code: 429, data: { error: 'RATE_LIMITED' } })
    expect(body.msg).toContain('最多 2 个')
    open[0]?.close()
    const again = await waitFor(
      async () => {
        const r = await openSse(eventsUrl(gateway.url, taskId))
        if (r.status === 200) return r
        r.close()
        return null
      },
      { what: 'a slot once a stream closed' },
    )
    expect(again.status).toBe(200)
  })

  it('leaves nothing behind once its streams close: slots and subscriptions are freed', async () => {
    const dir = await tempDir('task-events-leaks')
    const gateway = await startTestGateway(dir, {
      taskEvents: { maxPerCaller: 3, heartbeatMs: 5_000 },
    })
    const taskId = await submitFresh(gateway.url)
    const before = gateway.outbox.subscribers
    for (let round = 0; round < 5; round++) {
      const open = await Promise.all([1, 2, 3].map(() => openSse(eventsUrl(gateway.url, taskId))))
      expect(open.map((r) => r.status)).toEqual([200, 200, 200])
      expect(gateway.outbox.subscribers).toBe(before + 3)
      for (const r of open) r.close()
      await waitFor(() => gateway.outbox.subscribers === before, { what: 'subscriptions dropped' })
    }
  })

  it('counts a queued task’s estimate down between events, on the heartbeat', async () => {
    const dir = await tempDir('task-events-countdown')
    let clock = Date.now()
    const gateway = await startTestGateway(
      dir,
      { taskEvents: { maxPerCaller: 8, heartbeatMs: 100 } },
      () => clock,
    )
    const taskId = await submitFresh(gateway.url)
    const reader = await openSse(eventsUrl(gateway.url, taskId))
    await waitFor(() => reader.messages.length >= 1, { what: 'the first status' })
    const start = received(reader)[0]?.data.eta_seconds ?? 0
    expect(start).toBeGreaterThan(60)
    clock += 60_000
    const moved = await waitFor(
      () => received(reader).find((m) => m.data.eta_seconds <= start - 50),
      { what: 'a lower estimate' },
    )
    // No event happened: the refresh moves no resume point.
    expect(moved.id).toBeNull()
    expect(moved.data.status).toBe('queued')
  })
})

describe('a client of the task event stream that stops reading', () => {
  it('is cut off, while another client gets every event', async () => {
    const dir = await tempDir('task-events-stall')
    const gateway = await startTestGateway(dir, { idleTimeoutMs: IDLE_MS })
    const taskId = await submitFresh(gateway.url)
    // 20,000 events of the task (each message ~400 bytes: far more than a socket buffers),
    // written by a second connection to the gateway's database.
    const count = 20_000
    const db = new Database(join(dir, 'gateway', 'gateway.sqlite'))
    const insert = db.prepare(
      `INSERT INTO task_events (task_id, kind, at, rc_at, attempt, from_state, to_state, gpu_id, data)
       VALUES (?, 'progress', ?, ?, 1, 'queued', 'queued', NULL, '{}')`,
    )
    db.transaction(() => {
      for (let i = 0; i < count; i++) insert.run(taskId, Date.now(), Date.now())
    })()
    db.close()

    const path = `${TASK_PATHS.events}?task_id=${taskId}&license_key=K`
    const stalled = await stalledStream(
      gateway.url,
      `GET ${path} HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 0\r\n\r\n`,
    )
    const reader = await openSse(eventsUrl(gateway.url, taskId), { lastEventId: '0' })
    const total = gateway.outbox.ofTask(taskId).length
    await waitFor(() => reader.messages.length === total, {
      what: 'every event at the reading client',
      timeoutMs: 30_000,
    })
    // What is under test is the idle timeout, so the test waits it out (as relay-events does).
    await delay(Math.max(0, IDLE_MS + 1_000 - (performance.now() - stalled.since)))
    stalled.resume()
    await waitFor(stalled.cut, { what: 'the stalled client cut off', timeoutMs: 10_000 })
  })
})
