import { describe, expect, it } from 'vitest'
import { ProgressThrottle, type ProgressUpdate } from '../../gpu-bridge/progress-throttle.js'
import { waitFor } from '../helpers/wait-for.js'

const at = (progress: number): ProgressUpdate => ({ progress, stage: 'rendering', message: '' })

describe('progress throttle', () => {
  it('sends at most one update per interval and always the last one', async () => {
    let clock = 0
    const sent: number[] = []
    const throttle = new ProgressThrottle(
      500,
      (u) => sent.push(u.progress),
      () => clock,
    )
    throttle.push(at(10))
    throttle.push(at(11))
    throttle.push(at(12))
    expect(sent).toEqual([10])
    clock = 500
    await waitFor(() => sent.length === 2, { what: 'the held value' })
    expect(sent).toEqual([10, 12])
    throttle.push(at(12))
    throttle.cancel()
    expect(sent).toEqual([10, 12])
  })

  it('flush sends the held value at once', () => {
    const sent: number[] = []
    const throttle = new ProgressThrottle(
      10_000,
      (u) => sent.push(u.progress),
      () => 0,
    )
    throttle.push(at(1))
    throttle.push(at(2))
    throttle.flush()
    expect(sent).toEqual([1, 2])
  })
})
