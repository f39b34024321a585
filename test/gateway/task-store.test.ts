import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { openDb } from '../../gateway/db.js'
import { TaskStore, type ProgressUpdate } from '../../gateway/task-store.js'
import { tempDir } from '../helpers/temp-dir.js'

/** The relay clock the store measures durations on (set by the tests). */
interface FakeRelay {
  t: number
}

async function store(relay: FakeRelay = { t: 1_000 }): Promise<TaskStore> {
  const db = openDb(join(await tempDir('store'), 'g.sqlite'))
  onTestFinished(() => {
    db.close()
  })
  return new TaskStore(db, () => relay.t)
}

const file = (hash: string) => ({ hash: hash.repeat(32), ext: '.wav', size: 10 })

/** One progress event of t1 on gpu-1, attempt 1, without frames. */
function up(fields: Pick<ProgressUpdate, 'seq' | 'progress' | 'now'> & Partial<ProgressUpdate>) {
  const base = { id: 't1', gpuId: 'gpu-1', attempt: 1, stage: 'rendering' as const }
  return { ...base, message: null, currentFrame: null, totalFrames: null, ...fields }
}

function add(s: TaskStore, id: string, now = 1_000) {
  return s.insert({
    id,
    owner: 'K',
    source: 'task-api',
    gpuId: 'gpu-1',
    audio: file('a'),
    video: file('b'),
    options: {},
    now,
    expiresAt: now + 10_000,
    requestKey: null,
  })
}

describe('task store', () => {
  it('grants a claim once: only for the assigned GPU, the current attempt and a queued, unexpired task', async () => {
    const relay = { t: 1_000 }
    const s = await store(relay)
    add(s, 't1')
    relay.t = 2_000
    expect(s.claim('t1', 'gpu-2', 1, 1, 9, 2_000)).toBe(false)
    expect(s.claim('t1', 'gpu-1', 2, 1, 9, 2_000)).toBe(false)
    relay.t = 20_000
    expect(s.claim('t1', 'gpu-1', 1, 1, 9, 2_000)).toBe(false) // past its TTL on the relay clock
    relay.t = 2_000
    expect(s.claim('t1', 'gpu-1', 1, 1, 9, 2_000)).toBe(true)
    expect(s.claim('t1', 'gpu-1', 1, 2, 9, 2_001)).toBe(false)
    expect(s.get('t1')?.state).toBe('processing')
  })

  it('applies progress of the current attempt only in increasing seq order', async () => {
    const s = await store()
    add(s, 't1')
    s.claim('t1', 'gpu-1', 1, 1, 9, 2_000)
    expect(s.progress(up({ seq: 3, progress: 40, now: 2_100 }))).toBe(true)
    expect(s.progress(up({ seq: 2, progress: 20, now: 2_200 }))).toBe(false)
    expect(s.progress(up({ seq: 3, progress: 40, now: 2_200 }))).toBe(false)
    expect(
      s.progress(up({ seq: 9, progress: 90, now: 2_300, gpuId: 'gpu-2', stage: 'encoding' })),
    ).toBe(false)
    expect(s.get('t1')?.progress).toBe(40)
  })

  it('re-queues as a new attempt, after which the old attempt can neither finish nor report', async () => {
    const s = await store()
    add(s, 't1')
    s.claim('t1', 'gpu-1', 1, 1, 9, 2_000)
    expect(s.requeue('t1', 1, 'gpu-1', 'lost', 3_000)).toBe(true)
    expect(s.get('t1')).toMatchObject({ state: 'queued', attempt: 2, progress: 0, last_seq: 0 })
    expect(
      s.finishDone('t1', 'gpu-1', 1, 5, { hash: 'c'.repeat(32), ext: '.mp4', size: 1 }, 4_000),
    ).toBe(false)
    expect(s.unpublished().map((r) => r.id)).toEqual(['t1'])
    expect(s.transitions('t1').map((t) => t.to_state)).toEqual(['queued', 'processing', 'queued'])
  })

  it('knows queue positions in submit order and the rows never published', async () => {
    const s = await store()
    add(s, 't1')
    add(s, 't2')
    add(s, 't3')
    s.markPublished('t2', 1)
    const t3 = s.get('t3')
    expect(t3 && s.queuePosition(t3)).toBe(3)
    expect(s.unpublished().map((r) => r.id)).toEqual(['t1', 't3'])
    expect(s.olderQueued('gpu-1', t3?.seq ?? 0).map((r) => r.id)).toEqual(['t1', 't2'])
  })

  it('measures the queue TTL on the relay clock: a wall clock a day ahead or behind expires nothing', async () => {
    const relay = { t: 1_000 }
    const s = await store(relay)
    add(s, 't1')
    add(s, 't2')
    const day = 24 * 60 * 60 * 1000
    relay.t = 5_000
    expect(s.dueToExpire()).toEqual([])
    expect(s.claim('t1', 'gpu-1', 1, 1, 9, 1_000 + day)).toBe(true) // wall a day ahead
    relay.t = 10_999
    expect(s.dueToExpire()).toEqual([])
    relay.t = 11_000
    expect(s.dueToExpire()).toEqual(['t2'])
    expect(s.get('t1')).toMatchObject({ claimed_at: 1_000 + day, rc_claimed_at: 5_000 })
  })

  it('takes one result per attempt, and finishes only with the result stored for that attempt', async () => {
    const s = await store()
    add(s, 't1')
    s.claim('t1', 'gpu-1', 1, 1, 9, 2_000)
    const result = { hash: 'c'.repeat(32), ext: '.mp4', size: 5, type: 'video/mp4' }
    expect(s.recordResult({ id: 't1', gpuId: 'gpu-2', attempt: 1, result })).toEqual({
      kind: 'not-current',
    })
    expect(s.recordResult({ id: 't1', gpuId: 'gpu-1', attempt: 2, result })).toEqual({
      kind: 'not-current',
    })
    expect(s.recordResult({ id: 't1', gpuId: 'gpu-1', attempt: 1, result })).toEqual({
      kind: 'stored',
    })
    const other = { ...result, hash: 'd'.repeat(32) }
    expect(s.recordResult({ id: 't1', gpuId: 'gpu-1', attempt: 1, result: other })).toEqual({
      kind: 'already-stored',
      result,
    })
    // A done naming another file (the task's own input, say) changes nothing.
    expect(s.finishDone('t1', 'gpu-1', 1, 2, file('a'), 3_000)).toBe(false)
    expect(s.finishDone('t1', 'gpu-1', 1, 2, other, 3_000)).toBe(false)
    expect(s.finishDone('t1', 'gpu-1', 1, 2, result, 3_000)).toBe(true)
    expect(s.get('t1')).toMatchObject({
      state: 'done',
      result_hash: result.hash,
      result_type: 'video/mp4',
    })
  })
})
