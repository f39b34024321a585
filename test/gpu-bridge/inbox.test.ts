import { join } from 'node:path'
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
    box.setPhase(message(1).taskId, 1, 'received', 500)
    expect(box.nextToClaim(0)?.order).toBe(2)
  })

  it('holds a claim back for its backoff only: one set before the clock stepped back a day is over', async () => {
    const { inbox: box } = await inbox()
    box.receive(message(1), 0)
    const now = Date.now()
    box.setPhase(message(1).taskId, 1, 'received', now + 1_000)
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
    first.inbox.setPhase(m.taskId, 1, 'running')
    first.inbox.setServiceTaskId(m.taskId, 1, 'svc-9')
    first.inbox.close()

    const second = await inbox(first.dir)
    expect(second.inbox.bumpEpoch(0)).toBe(2)
    expect(second.inbox.nextSeq(m.taskId, 1)).toBe(2)
    expect(second.inbox.holding()).toEqual([
      { taskId: m.taskId, attempt: 1, phase: 'running', serviceTaskId: 'svc-9' },
    ])
  })
})
