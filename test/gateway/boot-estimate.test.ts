import { describe, expect, it } from 'vitest'
import { MIN_BOOT_REMAINING_S, bootEstimateS, bootRemainingS } from '../../gateway/boot-estimate.js'

describe('the boot estimate', () => {
  it('is the median of recent boots, the configured time until there is any', () => {
    expect(bootEstimateS([], 120)).toBe(120)
    expect(bootEstimateS([200_000], 120)).toBe(200)
    expect(bootEstimateS([90_000, 300_000, 60_000], 120)).toBe(90)
    expect(bootEstimateS([60_000, 80_000, 100_000, 400_000], 120)).toBe(90)
  })

  it('counts down as the wait goes on', () => {
    expect(bootRemainingS({ bootS: 120, elapsedS: 0 })).toBe(120)
    expect(bootRemainingS({ bootS: 120, elapsedS: 50 })).toBe(70)
    expect(bootRemainingS({ bootS: 120, elapsedS: 90 })).toBe(30)
  })

  it('is made again once the countdown is over, and counts down again: never stuck at the floor', () => {
    const seen: number[] = []
    for (let elapsedS = 0; elapsedS <= 600; elapsedS += 5) {
      seen.push(bootRemainingS({ bootS: 120, elapsedS }))
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(MIN_BOOT_REMAINING_S)
    // Past the boot estimate: a new estimate, above the floor, that moves from one moment to the next.
    const overdue = [130, 135, 140].map((elapsedS) => bootRemainingS({ bootS: 120, elapsedS }))
    expect(overdue[0]).toBeGreaterThan(MIN_BOOT_REMAINING_S)
    expect(overdue).toEqual([110, 105, 100])
    // An hour in, it still moves.
    expect(bootRemainingS({ bootS: 120, elapsedS: 3600 })).not.toBe(
      bootRemainingS({ bootS: 120, elapsedS: 3610 }),
    )
  })

  it('once overdue, re-estimates from the slower boots seen that would still be going on', () => {
    const historyS = [60, 80, 100, 300, 500]
    // 100 s in: the boots that took 300 s and 500 s are as slow as this one; their median is 400 s.
    expect(bootRemainingS({ bootS: 100, elapsedS: 100, historyS })).toBe(300)
    // 480 s in: only the 500 s one is left, and it would be over within the floor: one more boot.
    expect(bootRemainingS({ bootS: 100, elapsedS: 480, historyS })).toBe(120)
  })
})
