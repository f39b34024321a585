import { describe, expect, it } from 'vitest'
import { etaSeconds, humanDuration, queuedMessage } from '../../gateway/estimates.js'

describe('estimates', () => {
  it('adds the boot time when no GPU is online, and the runs ahead', () => {
    const base = { processing: 0, gpusOnline: 0, onlineCapacity: 0, bootS: 120, runS: 60 }
    expect(etaSeconds({ ...base, position: 1 })).toBe(120)
    expect(etaSeconds({ ...base, position: 3 })).toBe(240)
    expect(etaSeconds({ ...base, position: 1, gpusOnline: 1, onlineCapacity: 1 })).toBe(0)
    expect(
      etaSeconds({ ...base, position: 2, processing: 1, gpusOnline: 1, onlineCapacity: 1 }),
    ).toBe(120)
  })

  it('tells the user in Chinese that the task waits for the GPU and when it should start', () => {
    expect(queuedMessage(1, 120, 0)).toBe(
      '⏳ GPU 服务器未上线，任务已排队，预计约 2 分钟后开始；服务器上线后将自动处理，无需重新提交',
    )
    expect(queuedMessage(3, 45, 1)).toBe(
      '任务已提交，排队中（前面还有 2 个任务），预计约 45 秒后开始',
    )
    expect(humanDuration(3 * 3600)).toBe('约 3 小时')
  })
})
