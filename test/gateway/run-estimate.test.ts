import { describe, expect, it } from 'vitest'
import {
  median,
  remainingRunMs,
  runModel,
  runMsFor,
  workAheadMs,
} from '../../gateway/run-estimate.js'

describe('the run estimate', () => {
  it('takes medians, not means: one hung run does not move it', () => {
    expect(median([])).toBeNull()
    expect(median([5])).toBe(5)
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
    const model = runModel(
      [10_000, 12_000, 11_000, 900_000].map((runMs) => ({ runMs, audioMs: null })),
      120_000,
    )
    expect(runMsFor(model, null)).toBe(11_500)
  })

  it('is per second of audio where the lengths are known', () => {
    // Runs took 3 s of GPU time per second of audio.
    const model = runModel(
      [
        { runMs: 30_000, audioMs: 10_000 },
        { runMs: 60_000, audioMs: 20_000 },
        { runMs: 90_000, audioMs: 30_000 },
        { runMs: 5_000, audioMs: null },
      ],
      120_000,
    )
    expect(model.perAudioMs).toBe(3)
    expect(runMsFor(model, 40_000)).toBe(120_000)
    // Unknown length: the median run of all.
    expect(runMsFor(model, null)).toBe(45_000)
    // Ahead: two tasks of 5 s and 15 s audio, one of unknown length.
    expect(workAheadMs(model, { count: 3, knownCount: 2, knownAudioMs: 20_000 })).toBe(105_000)
  })

  it('is the configured time until any run is known', () => {
    const model = runModel([], 120_000)
    expect(runMsFor(model, 10_000)).toBe(120_000)
    expect(workAheadMs(model, { count: 2, knownCount: 2, knownAudioMs: 20_000 })).toBe(240_000)
  })

  it('counts a running task down, then goes by its progress once it overruns', () => {
    expect(remainingRunMs({ estimateMs: 60_000, elapsedMs: 20_000, progress: 10 })).toBe(40_000)
    // 80 s in, half done: as long again.
    expect(remainingRunMs({ estimateMs: 60_000, elapsedMs: 80_000, progress: 50 })).toBe(80_000)
    expect(remainingRunMs({ estimateMs: 60_000, elapsedMs: 80_000, progress: 0 })).toBe(0)
  })
})
