import { describe, expect, it } from 'vitest'
import { MAX_KEYS, RateLimiter } from '../../gateway/rate-limit.js'

describe('the rate limiter', () => {
  it('allows the limit per minute, then answers how long to wait, and lets the caller in again later', () => {
    let now = 600_000
    const limiter = new RateLimiter(3, () => now)
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 0])
    const wait = limiter.take('a')
    expect(wait).toBeGreaterThan(0)
    expect(wait).toBeLessThanOrEqual(60)
    expect(limiter.take('b')).toBe(0) // another caller is not held up
    now += 120_000 // two minutes later the old hits no longer count
    expect(limiter.take('a')).toBe(0)
  })

  it('remembers a bounded number of keys, and forgets the quiet ones after two minutes', () => {
    let now = 600_000
    const limiter = new RateLimiter(10, () => now)
    for (let i = 0; i < MAX_KEYS + 5_000; i++) limiter.take(`caller-${String(i)}`)
    expect(limiter.size).toBeLessThanOrEqual(MAX_KEYS)
    now += 120_000
    limiter.take('one more')
    expect(limiter.size).toBe(1)
  })
})
