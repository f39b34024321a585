import { describe, expect, it } from 'vitest'
import { file, newTask, taskFixture, up } from './task-fixture.js'
import { waitFor } from '../helpers/wait-for.js'

const claim = (id: string, gpuId = 'gpu-1', attempt = 1) => ({
  id,
  gpuId,
  attempt,
  seq: 1,
  epoch: 9,
})

describe('task rows', () => {
  it('grants a claim once: for the current attempt of a queued, unexpired task', async () => {
    const { lifecycle, store, clocks } = await taskFixture()
    lifecycle.submit(newTask('t1'))
    expect(store.get('t1')).toMatchObject({ state: 'queued', gpu_id: null, type: 'heygem' })
    clocks.relay = 2_000
    expect(lifecycle.claim(claim('t1', 'gpu-1', 2))).toBeUndefined()
    clocks.relay = 20_000
    expect(lifecycle.claim(claim('t1'))).toBeUndefined() // past its TTL on the relay clock
    clocks.relay = 2_000
    expect(lifecycle.claim(claim('t1', 'gpu-2'))).toBeDefined() // whichever GPU claims first
    expect(lifecycle.claim(claim('t1'))).toBeUndefined()
    expect(store.get('t1')).toMatchObject({ state: 'processing', gpu_id: 'gpu-2' })
  })

  it('applies progress of the current attempt only in increasing seq order', async () => {
    const { lifecycle, store } = await taskFixture()
    lifecycle.submit(newTask('t1'))
    lifecycle.claim(claim('t1'))
    expect(lifecycle.progress(up({ seq: 3, progress: 40 }))).toBe(true)
    expect(lifecycle.progress(up({ seq: 2, progress: 20 }))).toBe(false)
    expect(lifecycle.progress(up({ seq: 3, progress: 40 }))).toBe(false)
    expect(
      lifecycle.progress(up({ seq: 9, progress: 90, gpuId: 'gpu-2', stage: 'encoding' })),
    ).toBe(false)
    expect(store.get('t1')?.progress).toBe(40)
  })

  it('re-queues as a new attempt for any GPU, after which the old attempt can neither finish nor report', async () => {
    const { lifecycle, store, outbox } = await taskFixture()
    lifecycle.submit(newTask('t1'))
    lifecycle.claim(claim('t1'))
    expect(lifecycle.requeue({ id: 't1', attempt: 1, reason: 'lost' })).toBeDefined()
    expect(store.get('t1')).toMatchObject({
      state: 'queued',
      attempt: 2,
      gpu_id: null,
      progress: 0,
      last_seq: 0,
    })
    const result = { hash: 'c'.repeat(32), ext: '.mp4', size: 1 }
    expect(
      lifecycle.finish({ id: 't1', gpuId: 'gpu-1', attempt: 1, seq: 5, result }),
    ).toBeUndefined()
    expect(store.unpublished().map((r) => r.id)).toEqual(['t1'])
    expect(outbox.ofTask('t1').map((e) => `${e.kind}:${e.state ?? ''}:${e.note ?? ''}`)).toEqual([
      'submitted:queued:',
      'claimed:processing:',
      'requeued:queued:retry: lost',
    ])
  })

  it('knows queue positions in submit order, the rows never published and the older queued ones of a type', async () => {
    const { lifecycle, store } = await taskFixture()
    lifecycle.submit(newTask('t1'))
    lifecycle.submit(newTask('t2', { type: 'tts' }))
    lifecycle.submit(newTask('t3'))
    lifecycle.markPublished('t2', 1)
    lifecycle.flushDeferred()
    const t3 = store.get('t3')
    expect(t3 && store.queuePosition(t3)).toBe(3)
    expect(store.unpublished().map((r) => r.id)).toEqual(['t1', 't3'])
    expect(store.queuedOfTypes(['heygem'], 10, t3?.seq).map((r) => r.id)).toEqual(['t1'])
    expect(store.queuedOfTypes(['heygem', 'tts'], 2).map((r) => r.id)).toEqual(['t1', 't2'])
    expect(store.anyQueuedOfTypes(['asr'])).toBe(false)
  })

  it('lets a GPU fetch inputs of queued tasks of its types and of tasks running on it', async () => {
    const { lifecycle, store } = await taskFixture()
    lifecycle.submit(newTask('t1'))
    lifecycle.submit(newTask('t2', { type: 'tts', audio: file('c'), video: file('d') }))
    expect(store.isInputFor(file('a').hash, 'gpu-7')).toBe(true) // queued heygem
    expect(store.isInputFor(file('c').hash, 'gpu-7')).toBe(false) // a type it does not run
    lifecycle.claim(claim('t1', 'gpu-1'))
    expect(store.isInputFor(file('a').hash, 'gpu-1')).toBe(true)
    expect(store.isInputFor(file('a').hash, 'gpu-7')).toBe(false) // running elsewhere
  })

  it('measures the queue TTL on the relay clock: a wall clock a day ahead or behind expires nothing', async () => {
    const clocks = { wall: 1_000, relay: 1_000 }
    const { lifecycle, store } = await taskFixture(clocks)
    lifecycle.submit(newTask('t1'))
    lifecycle.submit(newTask('t2'))
    const day = 24 * 60 * 60 * 1000
    clocks.relay = 5_000
    clocks.wall = 1_000 + day
    expect(store.dueToExpire()).toEqual([])
    expect(lifecycle.claim(claim('t1'))).toBeDefined()
    clocks.relay = 10_999
    expect(store.dueToExpire()).toEqual([])
    clocks.relay = 11_000
    expect(store.dueToExpire()).toEqual(['t2'])
    expect(store.get('t1')).toMatchObject({ claimed_at: 1_000 + day, rc_claimed_at: 5_000 })
  })

  it('takes one result per attempt, and finishes only with the result stored for that attempt', async () => {
    const { lifecycle, store } = await taskFixture()
    lifecycle.submit(newTask('t1'))
    lifecycle.claim(claim('t1'))
    const result = { hash: 'c'.repeat(32), ext: '.mp4', size: 5, type: 'video/mp4' }
    const stored = (o: { gpuId: string; attempt: number; result: typeof result }) =>
      lifecycle.recordResult({ id: 't1', ...o })
    expect(stored({ gpuId: 'gpu-2', attempt: 1, result })).toEqual({ kind: 'not-current' })
    expect(stored({ gpuId: 'gpu-1', attempt: 2, result })).toEqual({ kind: 'not-current' })
    expect(stored({ gpuId: 'gpu-1', attempt: 1, result })).toEqual({ kind: 'stored' })
    const other = { ...result, hash: 'd'.repeat(32) }
    expect(stored({ gpuId: 'gpu-1', attempt: 1, result: other })).toEqual({
      kind: 'already-stored',
      result,
    })
    const finish = (r: { hash: string; ext: string; size: number }) =>
      lifecycle.finish({ id: 't1', gpuId: 'gpu-1', attempt: 1, seq: 2, result: r })
    // A done naming another file (the task's own input, say) changes nothing.
    expect(finish(file('a'))).toBeUndefined()
    expect(finish(other)).toBeUndefined()
    expect(finish(result)).toBeDefined()
    expect(store.get('t1')).toMatchObject({
      state: 'done',
      result_hash: result.hash,
      result_type: 'video/mp4',
    })
  })

  it('writes the PUBACKs of offers shortly after, off the PUBACK path, and drops a batch it cannot write', async () => {
    const { db, lifecycle, store } = await taskFixture()
    for (const id of ['p1', 'p2', 'p3']) lifecycle.submit(newTask(id))
    lifecycle.markPublished('p1', 1)
    lifecycle.markPublished('p2', 1)
    // Not on the PUBACK's path: still unwritten at once, then written by itself.
    expect(store.unpublished().map((r) => r.id)).toEqual(['p1', 'p2', 'p3'])
    await waitFor(() => store.unpublished().length === 1, { what: 'the batch written' })
    expect(store.unpublished().map((r) => r.id)).toEqual(['p3'])
    // A full disk: the batch is dropped without an exception; the start-up repair offers it again.
    db.pragma('query_only = ON')
    lifecycle.markPublished('p3', 1)
    expect(() => {
      lifecycle.flushDeferred()
    }).not.toThrow()
    db.pragma('query_only = OFF')
    lifecycle.flushDeferred()
    expect(store.unpublished().map((r) => r.id)).toEqual(['p3'])
  })
})
