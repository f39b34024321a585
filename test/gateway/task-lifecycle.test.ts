/**
 * The transition table (docs/design.md §4), move by move: from every state, every named move is
 * either allowed (the row moves, and exactly one event of the move's kind commits with it) or
 * refused (no row changes, no event is written, no subscriber hears anything).
 */
import { describe, expect, it } from 'vitest'
import type { TaskLifecycle } from '../../gateway/task-lifecycle.js'
import {
  TRANSITIONS,
  TRANSITION_NAMES,
  allowedFrom,
  type TransitionName,
} from '../../gateway/task-transitions.js'
import type { TaskState, TaskEvent } from '../../protocol/index.js'
import { newTask, taskFixture, type TaskFixture } from './task-fixture.js'

type Start = TaskState | null
const STARTS: readonly Start[] = [
  null,
  'queued',
  'processing',
  'done',
  'error',
  'cancelled',
  'expired',
]
const RESULT = { hash: 'c'.repeat(32), ext: '.mp4', size: 5, type: 'video/mp4' }
const claimOf = { id: 't1', gpuId: 'gpu-1', attempt: 1, seq: 1, epoch: 9 }

/** Bring task t1 to `state` through allowed moves (null: no t1). */
function bringTo(life: TaskLifecycle, state: Start): void {
  if (state === null) return
  life.submit(newTask('t1'))
  switch (state) {
    case 'queued':
      return
    case 'processing':
    case 'done':
      life.claim(claimOf)
      life.recordResult({ id: 't1', gpuId: 'gpu-1', attempt: 1, result: RESULT })
      if (state === 'done') life.finish({ ...claimOf, seq: 2, result: RESULT })
      return
    case 'error':
      life.fail({ id: 't1', attempt: 1, message: '失败', note: 'gpu-error' })
      return
    case 'cancelled':
      life.cancel('t1', 'owner')
      return
    case 'expired':
      life.expire('t1')
      return
  }
}

/** Make the move on t1; true when the lifecycle says it was made. */
function attempt(f: TaskFixture, name: TransitionName): boolean {
  const life = f.lifecycle
  switch (name) {
    case 'submit':
    case 'cacheHit':
      try {
        if (name === 'submit') life.submit(newTask('t1'))
        else life.cacheHit(newTask('t1'), must(f.store.get('src')))
        return true
      } catch {
        return false
      }
    case 'claim':
      return life.claim({ ...claimOf, seq: 5 }) !== undefined
    case 'requeue':
      return life.requeue({ id: 't1', attempt: 1, reason: 'GPU 离线' }) !== undefined
    case 'finish':
      return life.finish({ ...claimOf, seq: 6, result: RESULT }) !== undefined
    case 'fail':
      return (
        life.fail({ id: 't1', attempt: 1, message: '失败', note: 'exec-timeout' }) !== undefined
      )
    case 'cancel':
      return life.cancel('t1', 'owner') !== undefined
    case 'expire':
      return life.expire('t1') !== undefined
    case 'retry':
      return life.retry('t1', 10_000) !== undefined
    case 'purge':
      return life.purge('t1') !== undefined
  }
}

function must<T>(value: T | undefined): T {
  if (value === undefined) throw new Error('missing')
  return value
}

/** A finished task another can be a cache hit of. */
function addSource(f: TaskFixture): void {
  f.lifecycle.submit(newTask('src'))
  f.lifecycle.claim({ ...claimOf, id: 'src' })
  f.lifecycle.recordResult({ id: 'src', gpuId: 'gpu-1', attempt: 1, result: RESULT })
  f.lifecycle.finish({ ...claimOf, id: 'src', seq: 2, result: RESULT })
}

const cases = STARTS.flatMap((from) => TRANSITION_NAMES.map((name) => ({ from, name })))

describe('the task transition table', () => {
  it.each(cases.filter((c) => allowedFrom(c.name, c.from)))(
    'allows $name from $from: the row moves and one event commits with it',
    async ({ from, name }) => {
      const f = await taskFixture()
      addSource(f)
      bringTo(f.lifecycle, from)
      expect(f.store.get('t1')?.state ?? null).toBe(from)
      const heard: TaskEvent[] = []
      f.outbox.subscribe((e) => heard.push(e))
      const before = f.outbox.latestId()
      const attemptBefore = f.store.get('t1')?.attempt ?? 1

      expect(attempt(f, name)).toBe(true)

      const t = TRANSITIONS[name]
      const row = f.store.get('t1')
      expect(row?.state ?? null).toBe(t.to)
      const written = f.outbox.after(before, 100)
      expect(written).toHaveLength(1)
      expect(written[0]).toMatchObject({ kind: t.kind, taskId: 't1', from, state: t.to })
      expect(heard).toEqual(written)
      if (row) expect(row.attempt).toBe(t.newAttempt ? attemptBefore + 1 : attemptBefore)
      if (name === 'purge') expect(f.outbox.ofTask('t1')).toEqual(written)
      if (t.newAttempt) expect(row?.gpu_id).toBeNull() // offered to every GPU again
    },
  )

  it.each(cases.filter((c) => !allowedFrom(c.name, c.from)))(
    'refuses $name from $from: nothing changes, no event',
    async ({ from, name }) => {
      const f = await taskFixture()
      addSource(f)
      bringTo(f.lifecycle, from)
      const rowBefore = f.store.get('t1')
      const heard: TaskEvent[] = []
      f.outbox.subscribe((e) => heard.push(e))
      const before = f.outbox.latestId()

      expect(attempt(f, name)).toBe(false)

      expect(f.store.get('t1')).toEqual(rowBefore)
      expect(f.outbox.latestId()).toBe(before)
      expect(heard).toEqual([])
    },
  )

  it('is the table docs/states.md documents, written out here by hand', () => {
    // Not derived from TRANSITIONS: a wrong entry there must fail here.
    const documented = {
      submit: [[null], 'queued', 'submitted'],
      cacheHit: [[null], 'done', 'cache-hit'],
      claim: [['queued'], 'processing', 'claimed'],
      requeue: [['queued', 'processing'], 'queued', 'requeued'],
      finish: [['processing'], 'done', 'done'],
      fail: [['queued', 'processing'], 'error', 'failed'],
      cancel: [['queued', 'processing'], 'cancelled', 'cancelled'],
      expire: [['queued'], 'expired', 'expired'],
      retry: [['error'], 'queued', 'retried'],
      purge: [['done', 'error', 'cancelled', 'expired'], null, 'purged'],
    }
    const actual = Object.fromEntries(
      Object.entries(TRANSITIONS).map(([name, t]) => [name, [[...t.from], t.to, t.kind]]),
    )
    expect(actual).toEqual(documented)
  })

  it('covers every move from every state', () => {
    expect(cases).toHaveLength(STARTS.length * TRANSITION_NAMES.length)
    for (const name of TRANSITION_NAMES) {
      expect(STARTS.some((s) => allowedFrom(name, s))).toBe(true)
    }
  })

  it.each(TRANSITION_NAMES)(
    'commits %s and its event in one transaction: when the event cannot be written, the row does not move',
    async (name) => {
      const f = await taskFixture()
      addSource(f)
      const from = STARTS.find((s) => allowedFrom(name, s)) ?? null
      bringTo(f.lifecycle, from)
      const rowBefore = f.store.get('t1')
      const heard: TaskEvent[] = []
      f.outbox.subscribe((e) => heard.push(e))
      f.db.exec(`CREATE TRIGGER no_events BEFORE INSERT ON task_events
        BEGIN SELECT RAISE(ABORT, 'outbox refused'); END`)
      let made: boolean
      try {
        made = attempt(f, name)
      } catch {
        made = false
      }
      expect(made).toBe(false)
      expect(f.store.get('t1')).toEqual(rowBefore)
      expect(heard).toEqual([])
    },
  )
})

describe('the task event stream', () => {
  it('hands each committed event to a subscriber once, in id order, and nothing for a refused move', async () => {
    const f = await taskFixture()
    const heard: TaskEvent[] = []
    f.outbox.subscribe((e) => heard.push(e))
    const life = f.lifecycle
    life.submit(newTask('t1'))
    life.submit(newTask('t2'))
    expect(life.finish({ ...claimOf, seq: 2, result: RESULT })).toBeUndefined() // refused
    life.claim(claimOf)
    expect(life.claim({ ...claimOf, gpuId: 'gpu-2' })).toBeUndefined() // taken already
    life.progress({
      id: 't1',
      gpuId: 'gpu-1',
      attempt: 1,
      seq: 2,
      progress: 30,
      stage: 'rendering',
      message: null,
      currentFrame: null,
      totalFrames: null,
    })
    life.cancel('t2', 'owner')
    expect(life.retry('t2', 1_000)).toBeUndefined() // only a failed task is retried
    life.requeue({ id: 't1', attempt: 1, reason: 'lost' })

    expect(heard.map((e) => `${e.taskId}:${e.kind}`)).toEqual([
      't1:submitted',
      't2:submitted',
      't1:claimed',
      't1:progress',
      't2:cancelled',
      't1:requeued',
    ])
    const ids = heard.map((e) => e.id)
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    expect(new Set(ids).size).toBe(ids.length)
    expect(f.outbox.after(0, 100)).toEqual(heard)
    expect(heard[3]).toMatchObject({ progress: 30, stage: 'rendering', gpuId: 'gpu-1' })
    expect(heard[5]).toMatchObject({ attempt: 2, gpuId: null, note: 'retry: lost' })
  })

  it('keeps notifying the others when one subscriber throws', async () => {
    const f = await taskFixture()
    const heard: string[] = []
    f.outbox.subscribe(() => {
      throw new Error('boom')
    })
    f.outbox.subscribe((e) => heard.push(e.kind))
    f.lifecycle.submit(newTask('t1'))
    expect(heard).toEqual(['submitted'])
    expect(f.listenerErrors).toHaveLength(1)
  })

  it('keeps the mark of a purged task for one retention period, then drops it, and nothing else', async () => {
    const f = await taskFixture()
    addSource(f)
    bringTo(f.lifecycle, 'done')
    f.clocks.relay = 5_000
    expect(f.lifecycle.purge('t1')).toBeDefined()
    expect(f.outbox.ofTask('t1').map((e) => e.kind)).toEqual(['purged'])
    const others = f.outbox.ofTask('src')
    expect(f.outbox.forgetPurgedBefore(4_999)).toBe(0) // younger than the period: kept
    expect(f.outbox.forgetPurgedBefore(5_000)).toBe(1)
    expect(f.outbox.ofTask('t1')).toEqual([])
    expect(f.outbox.ofTask('src')).toEqual(others)
  })
})
