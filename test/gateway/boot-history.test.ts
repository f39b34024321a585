import { describe, expect, it } from 'vitest'
import { LearnedBoots, RECENT_BOOTS, bootsFrom } from '../../gateway/boot-history.js'

describe('boot times', () => {
  it('are learned from a GPU online with its service loading until it is ready, newest first', () => {
    let clock = 1_000
    const boots = new LearnedBoots(() => clock)
    boots.note('gpu-1', { online: true, ready: false })
    clock += 40_000
    boots.note('gpu-1', { online: true, ready: false }) // a heartbeat while loading
    clock += 20_000
    boots.note('gpu-1', { online: true, ready: true })
    boots.note('gpu-1', { online: true, ready: true }) // heartbeats once ready add nothing
    expect(boots.recentBootMs()).toEqual([60_000])
    // A GPU seen ready at once (a bridge restart): no boot was watched.
    boots.note('gpu-2', { online: true, ready: true })
    // One that goes away while loading: its boot is not counted.
    boots.note('gpu-2', { online: false, ready: false })
    boots.note('gpu-2', { online: true, ready: false })
    boots.note('gpu-2', { online: false, ready: false })
    clock += 5_000
    boots.note('gpu-2', { online: true, ready: false })
    clock += 30_000
    boots.note('gpu-2', { online: true, ready: true })
    expect(boots.recentBootMs()).toEqual([30_000, 60_000])
  })

  it('keep the recent ones only', () => {
    let clock = 0
    const boots = new LearnedBoots(() => clock)
    for (let i = 1; i <= RECENT_BOOTS + 5; i++) {
      boots.note('gpu-1', { online: true, ready: false })
      clock += i
      boots.note('gpu-1', { online: true, ready: true })
      boots.note('gpu-1', { online: false, ready: false })
    }
    expect(boots.recentBootMs()).toHaveLength(RECENT_BOOTS)
    expect(boots.recentBootMs()[0]).toBe(RECENT_BOOTS + 5)
  })

  it("come from the power controller's measurements while it has any", () => {
    const learned = { recentBootMs: () => [10_000] }
    let measured: number[] = []
    const boots = bootsFrom({ recentBootMs: () => measured }, learned)
    expect(boots()).toEqual([10_000])
    measured = [90_000, 80_000]
    expect(boots()).toEqual([90_000, 80_000])
    expect(bootsFrom(undefined, learned)()).toEqual([10_000])
  })
})
