import { describe, expect, it } from 'vitest'
import { topicsFor } from '../../protocol/index.js'

describe('topics', () => {
  it('builds every topic under the configured root and parses GPU topics back', () => {
    const t = topicsFor('acme/relay')
    expect(t.gpuTasks('gpu-7')).toBe('acme/relay/gpus/gpu-7/tasks')
    expect(t.task('abc')).toBe('acme/relay/tasks/abc')
    expect(t.queue).toBe('acme/relay/queue')
    expect(t.allGpus('events')).toBe('acme/relay/gpus/+/events')
    expect(t.parseGpuTopic('acme/relay/gpus/gpu-7/events')).toEqual({
      gpuId: 'gpu-7',
      channel: 'events',
    })
  })

  it('refuses topics that are not one GPU channel', () => {
    const t = topicsFor()
    expect(t.parseGpuTopic('relay/gpus/gpu-1/unknown')).toBeNull()
    expect(t.parseGpuTopic('relay/gpus/a/b/events')).toBeNull()
    expect(t.parseGpuTopic('other/gpus/gpu-1/state')).toBeNull()
    expect(() => topicsFor('bad/#')).toThrow(/invalid MQTT topic root/)
  })
})
