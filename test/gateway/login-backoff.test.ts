import { describe, expect, it } from 'vitest'
import { LoginBackoff } from '../../gateway/login-backoff.js'

const MINUTE = 60_000

function backoff(options: { maxKeys?: number } = {}) {
  const clock = { now: 1_000_000 }
  const logins = new LoginBackoff({ now: () => clock.now, ...options })
  return { clock, logins }
}

describe('failed logins per address', () => {
  it('lets 4 refusals pass, then makes the address wait 1 s, doubling with each refusal up to 300 s', () => {
    const { clock, logins } = backoff()
    for (let i = 1; i <= 4; i++) {
      expect(logins.failed('10.0.0.1')).toEqual({ failures: i, retryAfterS: 0 })
      expect(logins.retryAfterS('10.0.0.1')).toBe(0)
    }
    expect(logins.failed('10.0.0.1')).toEqual({ failures: 5, retryAfterS: 1 })
    expect(logins.retryAfterS('10.0.0.1')).toBe(1)
    const waits: number[] = []
    for (let i = 0; i < 11; i++) {
      clock.now += logins.retryAfterS('10.0.0.1') * 1000 // waits it out, then fails again
      expect(logins.retryAfterS('10.0.0.1')).toBe(0)
      waits.push(logins.failed('10.0.0.1').retryAfterS)
    }
    expect(waits).toEqual([2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300])
    clock.now += 299_500
    expect(logins.retryAfterS('10.0.0.1')).toBe(1) // rounded up, never 0 while waiting
  })

  it('holds only the address that failed', () => {
    const { logins } = backoff()
    for (let i = 0; i < 5; i++) logins.failed('10.0.0.1')
    expect(logins.retryAfterS('10.0.0.1')).toBe(1)
    expect(logins.retryAfterS('10.0.0.2')).toBe(0)
  })

  it('counts refusals within 10 minutes only, and starts afresh after 10 quiet minutes', () => {
    const { clock, logins } = backoff()
    for (let i = 0; i < 4; i++) logins.failed('10.0.0.1')
    clock.now += 10 * MINUTE + 1
    expect(logins.failed('10.0.0.1')).toEqual({ failures: 1, retryAfterS: 0 })
    for (let i = 0; i < 6; i++) {
      clock.now += logins.retryAfterS('10.0.0.1') * 1000
      logins.failed('10.0.0.1')
    }
    expect(logins.retryAfterS('10.0.0.1')).toBe(4) // in backoff: 1, 2, then 4 s
    clock.now += 10 * MINUTE + 1
    expect(logins.retryAfterS('10.0.0.1')).toBe(0)
    expect(logins.failed('10.0.0.1')).toEqual({ failures: 1, retryAfterS: 0 })
  })

  it('remembers a bounded number of addresses, and sweeps out the quiet ones', () => {
    const { clock, logins } = backoff({ maxKeys: 1_000 })
    for (let i = 0; i < 5_000; i++) logins.failed(`10.0.${String(i >> 8)}.${String(i & 255)}`)
    expect(logins.size).toBeLessThanOrEqual(1_000)
    clock.now += 11 * MINUTE
    logins.failed('10.9.9.9')
    expect(logins.size).toBe(1)
  })
})
