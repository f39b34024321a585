import { describe, expect, it } from 'vitest'
import { EstimateAccuracy } from '../../gateway/estimate-accuracy.js'
import { EstimateReads } from '../../gateway/estimate-store.js'
import { file, newTask, taskFixture } from './task-fixture.js'

const claim = { gpuId: 'gpu-1', seq: 0, epoch: 1 }

describe('estimate quality', () => {
  it('compares the start estimated at submit with the first claim, newest first, with the median error', async () => {
    const f = await taskFixture()
    const accuracy = new EstimateAccuracy(f.db)
    expect(accuracy.quality()).toEqual({ samples: 0, median_error_s: null, recent: [] })

    f.lifecycle.submit(newTask('t1', { estimatedStartS: 10, expiresAt: 1e9 }))
    f.lifecycle.submit(newTask('t2', { estimatedStartS: 40, expiresAt: 1e9 }))
    f.lifecycle.submit(newTask('t3', { expiresAt: 1e9 })) // no estimate kept: not a sample
    f.clocks.relay += 12_000
    f.lifecycle.claim({ ...claim, id: 't1', attempt: 1 })
    // t1 fails on its GPU and is queued again: its start stays the first claim.
    f.lifecycle.requeue({ id: 't1', attempt: 1, reason: 'GPU 离线' })
    f.clocks.relay += 20_000
    f.lifecycle.claim({ ...claim, id: 't2', attempt: 1 })
    f.clocks.relay += 1_000
    f.lifecycle.claim({ ...claim, id: 't1', attempt: 2 })
    f.lifecycle.claim({ ...claim, id: 't3', attempt: 1 })

    expect(accuracy.quality()).toEqual({
      samples: 2,
      median_error_s: 5,
      recent: [
        { task_id: 't2', estimated_start_s: 40, actual_start_s: 32, error_s: -8 },
        { task_id: 't1', estimated_start_s: 10, actual_start_s: 12, error_s: 2 },
      ],
    })
  })

  it('reads runs with their audio length, and sums what is queued ahead', async () => {
    const f = await taskFixture()
    const reads = new EstimateReads(f.db)
    f.db
      .prepare('INSERT INTO files (hash, ext, size, created_at, audio_ms) VALUES (?, ?, ?, ?, ?)')
      .run(file('c').hash, '.wav', 10, 0, 4_000)
    f.lifecycle.submit(newTask('q1', { audio: file('c') }))
    f.lifecycle.submit(newTask('q2'))
    f.lifecycle.submit(newTask('q3', { audio: file('c') }))
    const seq3 = f.store.get('q3')?.seq ?? 0
    expect(reads.queueAhead(seq3)).toEqual({ count: 2, knownCount: 1, knownAudioMs: 4_000 })
    expect(reads.queueAhead(Number.MAX_SAFE_INTEGER)).toEqual({
      count: 3,
      knownCount: 2,
      knownAudioMs: 8_000,
    })
    f.lifecycle.claim({ ...claim, id: 'q1', attempt: 1 })
    expect(reads.running()).toEqual([{ claimedAt: 1_000, progress: 0, audioMs: 4_000 }])
    expect(reads.recentRuns()).toEqual([])
  })
})
