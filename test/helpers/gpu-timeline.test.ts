import { describe, expect, it } from 'vitest'
import { mostAtOnce, timelineOf, waitsBehindIdleGpu, type EventRow } from './gpu-timeline.js'

const GPUS = [
  { id: 'fast', capacity: 1 },
  { id: 'wide', capacity: 2 },
]
const online = new Map(GPUS.map((g) => [g.id, [{ from: 0, to: 10_000 }]]))
const event = (task_id: string, kind: string, at: number): EventRow => ({
  task_id,
  kind,
  at,
  gpu_id: null,
})
/** An event of a task on a GPU: `[task, kind, at, gpu]`. */
const onGpu = ([task_id, kind, at, gpu_id]: [string, string, number, string]): EventRow => ({
  ...event(task_id, kind, at),
  gpu_id,
})

/** Both GPUs busy from 0: `fast` with t1 until `fastFreeAt`, `wide` with t2 and t3 until 9 s. */
function run(fastFreeAt: number, extra: EventRow[] = []): EventRow[] {
  return [
    event('t1', 'submitted', 0),
    event('t2', 'submitted', 0),
    event('t3', 'submitted', 0),
    event('t4', 'submitted', 0),
    onGpu(['t1', 'claimed', 0, 'fast']),
    onGpu(['t2', 'claimed', 0, 'wide']),
    onGpu(['t3', 'claimed', 0, 'wide']),
    event('t1', 'done', fastFreeAt),
    ...extra,
    event('t2', 'done', 9_000),
    event('t3', 'done', 9_000),
  ]
}

describe('the multi-GPU timeline', () => {
  it('counts a task that waited while a GPU had a free slot for longer than the grace', () => {
    // t4 is claimed by `fast` 2 s after t1 freed it.
    const events = run(1_000, [onGpu(['t4', 'claimed', 3_000, 'fast']), event('t4', 'done', 4_000)])
    const waits = waitsBehindIdleGpu({
      timeline: timelineOf(events, 10_000),
      online,
      gpus: GPUS,
      graceMs: 1_500,
    })
    expect(waits).toEqual([{ taskId: 't4', gpuId: 'fast', idleMs: 2_000 }])
  })

  it('does not count a short gap, a GPU that was off, or the busy slots of a wide GPU', () => {
    const quick = run(1_000, [onGpu(['t4', 'claimed', 1_200, 'fast']), event('t4', 'done', 2_000)])
    expect(
      waitsBehindIdleGpu({
        timeline: timelineOf(quick, 10_000),
        online,
        gpus: GPUS,
        graceMs: 1_500,
      }),
    ).toEqual([])
    const late = run(1_000, [onGpu(['t4', 'claimed', 3_000, 'fast']), event('t4', 'done', 4_000)])
    const fastOff = new Map([
      [
        'fast',
        [
          { from: 0, to: 1_000 },
          { from: 2_500, to: 10_000 },
        ],
      ],
      ['wide', [{ from: 0, to: 10_000 }]],
    ])
    expect(
      waitsBehindIdleGpu({
        timeline: timelineOf(late, 10_000),
        online: fastOff,
        gpus: GPUS,
        graceMs: 1_500,
      }),
    ).toEqual([])
  })

  it('counts a task never claimed while a GPU sat idle until the end', () => {
    const waits = waitsBehindIdleGpu({
      timeline: timelineOf(run(1_000), 10_000),
      online,
      gpus: GPUS,
      graceMs: 1_500,
    })
    expect(waits.map((w) => [w.taskId, w.gpuId])).toEqual([['t4', 'fast']])
  })

  it('finds the most slots held at once, a done and a claim at the same instant counted once', () => {
    const timeline = timelineOf(
      run(1_000, [onGpu(['t4', 'claimed', 1_000, 'fast']), event('t4', 'done', 2_000)]),
      10_000,
    )
    expect(mostAtOnce(timeline.slots.get('fast') ?? [])).toBe(1)
    expect(mostAtOnce(timeline.slots.get('wide') ?? [])).toBe(2)
  })
})
