import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { Inbox } from '../../gpu-bridge/inbox.js'
import type { TaskMessage } from '../../protocol/index.js'
import { tempDir } from '../helpers/temp-dir.js'

const file = (c: string) => ({ hash: c.repeat(32), ext: '.wav', size: 1 })
const message = (n: number, attempt = 1): TaskMessage => ({
  v: 1,
  taskId: `00000000-0000-4000-8000-00000000000${String(n)}`,
  attempt,
  order: n,
  type: 'heygem',
  input: { audio: file('a'), video: file('b') },
  options: {},
  expiresAt: '2099-01-01T00:00:00.000Z',
})

async function inbox(dir?: string): Promise<{ inbox: Inbox; dir: string }> {
  const d = dir ?? (await tempDir('inbox'))
  const box = new Inbox(join(d, 'bridge.sqlite'))
  onTestFinished(() => {
    try {
      box.close()
    } catch {
      // closed by the test
    }
  })
  return { inbox: box, dir: d }
}

describe('bridge inbox', () => {
  it('never lets the epoch go back, even when its file is lost', async () => {
    const { inbox: box } = await inbox()
    const now = Date.now()
    const first = box.bumpEpoch(now)
    expect(first).toBeGreaterThanOrEqual(now)
    expect(box.bumpEpoch(now - 60_000)).toBe(first + 1) // the clock stepped back
    const { inbox: fresh } = await inbox() // a re-imaged machine starts from an empty file
    expect(fresh.bumpEpoch(Date.now())).toBeGreaterThan(first)
  })

  it('stores each attempt once, replaces an older attempt and ignores a stale one', async () => {
    const { inbox: box } = await inbox()
    expect(box.receive(message(1), 0)).toBe('new')
    expect(box.receive(message(1), 0)).toBe('duplicate')
    expect(box.receive(message(1, 2), 0)).toBe('replaced')
    expect(box.receive(message(1, 1), 0)).toBe('stale')
    expect(box.all().map((r) => r.attempt)).toEqual([2])
  })

  it('offers the oldest received task first, whatever the arrival order', async () => {
    const { inbox: box } = await inbox()
    box.receive(message(3), 0)
    box.receive(message(1), 0)
    box.receive(message(2), 0)
    expect(box.nextToClaim(0)?.order).toBe(1)
    box.setPhase({ taskId: message(1).taskId, attempt: 1 }, 'received', 500)
    expect(box.nextToClaim(0)?.order).toBe(2)
  })

  it('holds a claim back for its backoff only: one set before the clock stepped back a day is over', async () => {
    const { inbox: box } = await inbox()
    box.receive(message(1), 0)
    const now = Date.now()
    box.setPhase({ taskId: message(1).taskId, attempt: 1 }, 'received', now + 1_000)
    expect(box.nextToClaim(now)).toBeUndefined()
    expect(box.nextToClaim(now + 1_000)?.order).toBe(1)
    const dayBack = now - 24 * 60 * 60 * 1000
    expect(box.nextToClaim(dayBack)?.order).toBe(1)
  })

  it('keeps phase, service task id, sequence numbers and the epoch across a restart', async () => {
    const first = await inbox()
    const m = message(1)
    first.inbox.receive(m, 0)
    expect(first.inbox.bumpEpoch(0)).toBe(1)
    expect(first.inbox.nextSeq(m.taskId, 1)).toBe(1)
    first.inbox.setPhase({ taskId: m.taskId, attempt: 1 }, 'running')
    first.inbox.setServiceTaskId(m.taskId, 1, 'svc-9')
    first.inbox.close()

    const second = await inbox(first.dir)
    expect(second.inbox.bumpEpoch(0)).toBe(2)
    expect(second.inbox.nextSeq(m.taskId, 1)).toBe(2)
    expect(second.inbox.holding()).toEqual([
      { taskId: m.taskId, attempt: 1, phase: 'running', serviceTaskId: 'svc-9' },
    ])
  })

  it('counts claimed and running tasks as busy, and reports them before the offers it holds', async () => {
    const { inbox: box } = await inbox()
    for (const n of [1, 2, 3, 4]) box.receive(message(n), 0)
    expect(box.startClaim(message(3).taskId, 1)).toBe(1)
    box.setPhase({ taskId: message(4).taskId, attempt: 1 }, 'running')
    expect(box.busy()).toBe(2)
    expect(box.holding().map((h) => [h.taskId, h.phase])).toEqual([
      [message(3).taskId, 'claiming'],
      [message(4).taskId, 'running'],
      [message(1).taskId, 'received'],
      [message(2).taskId, 'received'],
    ])
    expect(box.nextToClaim(0)?.order).toBe(1)
    box.drop(message(1).taskId, 1)
    expect(box.nextToClaim(0)?.order).toBe(2)
    expect(box.nextSeq(message(3).taskId, 1)).toBe(2) // the claim took 1
  })

  it('finds the next claim and the busy count through an index, not a scan of every offer held', async () => {
    const { inbox: box, dir } = await inbox()
    box.receive(message(1), 0)
    const db = new Database(join(dir, 'bridge.sqlite'), { readonly: true })
    onTestFinished(() => {
      db.close()
    })
    const plan = (sql: string) =>
      db
        .prepare<[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`)
        .all()
        .map((r) => r.detail)
        .join('; ')
    expect(
      plan(`SELECT * FROM inbox WHERE phase = 'received' AND (not_before <= 0 OR not_before > 1)
            ORDER BY ord LIMIT 1`),
    ).toMatch(/USING INDEX inbox_by_phase/)
    expect(plan(`SELECT COUNT(*) FROM inbox WHERE phase IN ('claiming', 'running')`)).toMatch(
      /USING COVERING INDEX inbox_by_phase/,
    )
  })

  it('migrates an inbox written before its schema had versions, keeping what it holds', async () => {
    const dir = await tempDir('inbox-old')
    const path = join(dir, 'bridge.sqlite')
    const old = new Database(path)
    // The first shape of the file: no submit_started column, no user_version.
    old.exec(`
      CREATE TABLE inbox (
        task_id TEXT PRIMARY KEY, attempt INTEGER NOT NULL, ord INTEGER NOT NULL,
        phase TEXT NOT NULL, message TEXT NOT NULL, service_task_id TEXT, final_event TEXT,
        next_seq INTEGER NOT NULL DEFAULT 1, not_before INTEGER NOT NULL DEFAULT 0,
        received_at INTEGER NOT NULL
      );
      CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO meta (key, value) VALUES ('epoch', 41);
    `)
    old
      .prepare(
        `INSERT INTO inbox (task_id, attempt, ord, phase, message, service_task_id, received_at)
         VALUES (?, 1, 1, 'running', ?, 'svc-1', 0)`,
      )
      .run(message(1).taskId, JSON.stringify(message(1)))
    old.close()

    const { inbox: box } = await inbox(dir)
    expect(box.get(message(1).taskId)).toMatchObject({
      phase: 'running',
      serviceTaskId: 'svc-1',
      submitStarted: false,
    })
    expect(box.bumpEpoch(0)).toBe(42)
    box.close()
    const check = new Database(path, { readonly: true })
    onTestFinished(() => {
      check.close()
    })
    expect(check.pragma('user_version', { simple: true })).toBe(2)
    const again = await inbox(dir) // a second open runs nothing again
    expect(again.inbox.get(message(1).taskId)?.phase).toBe('running')
  })
})
