import { describe, expect, it } from 'vitest'
import {
  DEFAULT_WAITING_TEXTS,
  startEtaS,
  humanDuration,
  waitingText,
} from '../../gateway/estimates.js'

describe('estimates', () => {
  it('adds the boot time when no GPU is ready, and the runs ahead', () => {
    const base = { runningS: [], ready: false, capacity: 1, bootS: 120 }
    expect(startEtaS({ ...base, ahead: 0, aheadWorkS: 0 })).toBe(120)
    expect(startEtaS({ ...base, ahead: 2, aheadWorkS: 120 })).toBe(240)
    expect(startEtaS({ ...base, ready: true, ahead: 0, aheadWorkS: 0 })).toBe(0)
    expect(startEtaS({ ...base, ready: true, runningS: [60], ahead: 1, aheadWorkS: 60 })).toBe(120)
  })

  it('spreads the work ahead over the ready capacity, slot by slot', () => {
    const ready = { ready: true, bootS: 0 }
    // Two slots, one busy for 50 s more: the first queued task starts at once.
    expect(startEtaS({ ...ready, capacity: 2, runningS: [50], ahead: 0, aheadWorkS: 0 })).toBe(0)
    // Both busy (50 s and 10 s left), one 60 s task ahead: it takes the slot free at 10 s, and
    // this one the slot free at 50 s.
    expect(startEtaS({ ...ready, capacity: 2, runningS: [50, 10], ahead: 1, aheadWorkS: 60 })).toBe(
      50,
    )
    // One slot: the same work runs one after another.
    expect(startEtaS({ ...ready, capacity: 1, runningS: [50], ahead: 1, aheadWorkS: 60 })).toBe(110)
    // Four tasks of 30 s ahead on three idle slots: the fourth slot frees at 30 s.
    expect(startEtaS({ ...ready, capacity: 3, runningS: [], ahead: 4, aheadWorkS: 120 })).toBe(30)
    // While none is ready, every slot of the GPUs expected opens when the boot is over.
    expect(
      startEtaS({
        ready: false,
        bootS: 100,
        capacity: 2,
        runningS: [500],
        ahead: 3,
        aheadWorkS: 90,
      }),
    ).toBe(130)
  })

  it('tells the user in Chinese that the task waits for the GPU, its place and when it should start', () => {
    expect(waitingText(DEFAULT_WAITING_TEXTS, 'offline', { position: 1, eta: 120 })).toBe(
      '⏳ GPU 服务器未上线，任务已排队（第1位），预计约 2 分钟后开始；服务器上线后将自动处理，无需重新提交',
    )
    expect(waitingText(DEFAULT_WAITING_TEXTS, 'queued', { position: 3, eta: 45 })).toBe(
      '任务排队中（第3位），预计约 45 秒后开始',
    )
    expect(waitingText(DEFAULT_WAITING_TEXTS, 'queued', { position: 1, eta: 0 })).toBe(
      '任务已提交，即将开始处理',
    )
    expect(humanDuration(3 * 3600)).toBe('约 3 小时')
  })

  it('uses configured words, for an app that never mentions the GPU', () => {
    const texts = { ...DEFAULT_WAITING_TEXTS, offline: '排队中，前面 {ahead} 个，{eta}后开始' }
    expect(waitingText(texts, 'offline', { position: 3, eta: 600 })).toBe(
      '排队中，前面 2 个，约 10 分钟后开始',
    )
  })
})
