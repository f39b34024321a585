import { describe, expect, it } from 'vitest'
import {
  DEFAULT_WAITING_TEXTS,
  bootRemainingS,
  etaSeconds,
  humanDuration,
  waitingText,
} from '../../gateway/estimates.js'

describe('estimates', () => {
  it('adds the boot time when no GPU is ready, and the runs ahead', () => {
    const base = { processing: 0, gpusOnline: 0, onlineCapacity: 0, bootS: 120, runS: 60 }
    expect(etaSeconds({ ...base, position: 1 })).toBe(120)
    expect(etaSeconds({ ...base, position: 3 })).toBe(240)
    expect(etaSeconds({ ...base, position: 1, gpusOnline: 1, onlineCapacity: 1 })).toBe(0)
    expect(
      etaSeconds({ ...base, position: 2, processing: 1, gpusOnline: 1, onlineCapacity: 1 }),
    ).toBe(120)
  })

  it('counts the boot estimate down as the wait goes on, to a floor once overdue', () => {
    expect(bootRemainingS(120, 0)).toBe(120)
    expect(bootRemainingS(120, 50)).toBe(70)
    expect(bootRemainingS(120, 119)).toBe(30)
    expect(bootRemainingS(120, 3600)).toBe(30)
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
