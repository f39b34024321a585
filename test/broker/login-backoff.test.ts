/** Failed-login backoff state: doubling up to its ceiling, forgotten after the window, bounded. */
import { describe, expect, it } from 'vitest'
import { DEFAULT_LOGIN_BACKOFF, LoginBackoff } from '../../broker/login-backoff.js'

function backoff(maxAddresses = DEFAULT_LOGIN_BACKOFF.maxAddresses) {
  const clock = { now: 0 }
  const state = new LoginBackoff({ ...DEFAULT_LOGIN_BACKOFF, maxAddresses, now: () => clock.now })
  return { clock, state }
}

describe('login backoff', () => {
  it('lets 4 failures through, then waits 1 s, doubling with each further failure up to 300 s', () => {
    const { clock, state } = backoff()
    const waits: number[] = []
    for (let i = 0; i < 15; i++) {
      waits.push(state.failed('10.0.0.1'))
      clock.now += state.waitFor('10.0.0.1')
      expect(state.waitFor('10.0.0.1')).toBe(0)
    }
    expect(waits).toEqual([
      0, 0, 0, 0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000,
      300_000,
    ])
  })

  it('forgets an address 10 minutes after its last failure, and not before', () => {
    const { clock, state } = backoff()
    for (let i = 0; i < 6; i++) state.failed('10.0.0.1')
    expect(state.waitFor('10.0.0.1')).toBe(2_000)
    clock.now += 10 * 60_000
    expect(state.failed('10.0.0.1')).toBe(4_000) // within the window: still counted
    clock.now += 10 * 60_000 + 1
    state.failed('10.0.0.2') // any later failure sweeps what expired
    expect(state.size).toBe(1)
    expect(state.failed('10.0.0.1')).toBe(0) // a fresh start: one failure of five
    for (let i = 0; i < 3; i++) expect(state.failed('10.0.0.1')).toBe(0)
    expect(state.failed('10.0.0.1')).toBe(1_000)
  })

  it('keeps at most maxAddresses, dropping the one whose last failure is oldest', () => {
    const { clock, state } = backoff(1_000)
    for (let i = 0; i < 5; i++) state.failed('10.9.9.9')
    for (let i = 0; i < 5_000; i++) {
      clock.now += 1
      state.failed(`10.0.${String(Math.floor(i / 256))}.${String(i % 256)}`)
    }
    expect(state.size).toBe(1_000)
    expect(state.failed('10.9.9.9')).toBe(0) // forgotten: a first failure again
  })
})
