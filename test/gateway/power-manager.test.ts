import { describe, expect, it } from 'vitest'
import { PowerManager } from '../../gateway/power/power-manager.js'
import type { PowerAction, PowerReason } from '../../protocol/index.js'

const DEADLINE = 10_000
const IDLE = 30_000

/** A manager over a fake relay (gpu-1 and gpu-2, which stays off), with a relay clock the test moves. */
function fixture(o: { auto?: boolean } = {}) {
  const world = { rc: 1_000, online: false, ready: false, epoch: 1, queued: 0, processing: 0 }
  const requests: { gpuId: string; action: PowerAction; reason: PowerReason; id: string }[] = []
  const boots: number[] = []
  const manager = new PowerManager({
    inputs: {
      gpus: () => [
        { id: 'gpu-1', online: world.online, ready: world.ready, epoch: world.epoch },
        { id: 'gpu-2', online: false, ready: false, epoch: -1 }, // never heard from
      ],
      counts: () => ({ queued: world.queued, processing: world.processing }),
    },
    managed: ['gpu-1', 'gpu-2'],
    auto: o.auto ?? true,
    idleMs: IDLE,
    bootDeadlineMs: DEADLINE,
    request: (r) => {
      const id = `r${String(requests.length + 1)}`
      requests.push({ ...r, id })
      return id
    },
    onReady: (r) => boots.push(r.bootMs),
    relay: () => world.rc,
    now: () => 1_700_000_000_000 + world.rc,
    random: () => 0,
  })
  const advance = (ms: number): void => {
    world.rc += ms
    manager.tick()
  }
  const asked = (): string[] =>
    requests.map((r) => `${r.action}:${r.reason}${r.gpuId === 'gpu-1' ? '' : `@${r.gpuId}`}`)
  const state = (): string | undefined => manager.get('gpu-1')?.state
  return { world, manager, requests, boots, advance, asked, state }
}

describe('the power manager', () => {
  it('asks for a start once per boot (one GPU) when a task is queued and no GPU is online or booting', () => {
    const f = fixture()
    f.manager.tick()
    expect(f.asked()).toEqual([])
    f.world.queued = 1
    f.manager.submitted()
    f.manager.submitted()
    f.advance(1_000)
    expect(f.asked()).toEqual(['start:queued'])
    expect(f.state()).toBe('booting')
  })

  it('asks again after the boot deadline, backing off, and learns the boot time on the relay clock', () => {
    const f = fixture()
    f.world.queued = 1
    f.manager.submitted()
    f.advance(DEADLINE - 1)
    expect(f.asked()).toEqual(['start:queued'])
    f.advance(1)
    expect(f.asked()).toEqual(['start:queued', 'start:boot-deadline'])
    f.advance(2 * DEADLINE - 1) // the second wait is twice as long
    expect(f.asked()).toHaveLength(2)
    f.advance(1)
    expect(f.asked()).toHaveLength(3)
    f.advance(4_000)
    f.world.online = true
    f.advance(0)
    expect(f.state()).toBe('booting') // online, its service still loading
    f.world.ready = true
    f.advance(1_000)
    expect(f.state()).toBe('online')
    // From the first request: the wait a user had (the retries are part of the boot).
    expect(f.boots).toEqual([35_000])
  })

  it('gives a boot up when nothing waits for it any more', () => {
    const f = fixture()
    f.world.queued = 1
    f.manager.submitted()
    f.world.queued = 0 // cancelled
    f.advance(DEADLINE)
    expect(f.state()).toBe('off')
    expect(f.asked()).toEqual(['start:queued'])
  })

  it('asks for one stop after the idle window, never while a task runs or is queued, nor soon after a submit', () => {
    const f = fixture()
    f.world.online = true
    f.world.ready = true
    f.world.processing = 1
    f.advance(IDLE * 2)
    expect(f.state()).toBe('online')
    f.world.processing = 0
    f.world.queued = 1
    f.advance(IDLE * 2)
    f.world.queued = 0
    f.advance(0)
    expect(f.state()).toBe('idle')
    f.advance(IDLE - 1)
    expect(f.asked()).toEqual([])
    f.manager.submitted() // a task submitted and finished at once (a cached result)
    f.advance(1)
    expect(f.asked()).toEqual([])
    f.advance(IDLE)
    expect(f.asked()).toEqual(['stop:idle'])
    expect(f.state()).toBe('shutting-down')
    f.advance(IDLE * 10)
    expect(f.asked()).toEqual(['stop:idle'])
    f.world.online = false
    f.advance(1_000)
    expect(f.state()).toBe('off')
    expect(f.asked()).toEqual(['stop:idle'])
  })

  it('asks for power again on a submit during shutdown, and again after a stop that failed', () => {
    const f = fixture()
    f.world.online = true
    f.world.ready = true
    f.advance(0)
    f.advance(IDLE)
    expect(f.asked()).toEqual(['stop:idle'])
    f.world.queued = 1
    f.manager.submitted()
    expect(f.asked()).toEqual(['stop:idle', 'start:queued'])
    f.advance(1_000)
    // Still up, but being switched off: it takes no work until it has gone, or until the
    // deadline says the stop did not take.
    expect(f.state()).toBe('booting')
    expect(f.manager.takesWork('gpu-1')).toBe(false)
    f.advance(DEADLINE)
    expect(f.state()).toBe('online')
    expect(f.manager.takesWork('gpu-1')).toBe(true)
    expect(f.boots).toEqual([]) // it never went off: no boot to learn
    f.world.queued = 0
    f.advance(0)
    f.advance(IDLE)
    const stop = f.requests.at(-1)
    expect(stop?.action).toBe('stop')
    f.manager.stopFailed('gpu-1', stop?.id ?? '')
    expect(f.state()).toBe('online')
    f.advance(0)
    f.advance(IDLE)
    expect(f.asked()).toEqual(['stop:idle', 'start:queued', 'stop:idle', 'stop:idle'])
  })

  it('with automatic power off asks only when an admin does', () => {
    const f = fixture({ auto: false })
    f.world.queued = 1
    f.manager.submitted()
    f.advance(DEADLINE * 10)
    expect(f.asked()).toEqual([])
    f.manager.manual('gpu-1', 'start')
    expect(f.asked()).toEqual(['start:manual'])
    expect(f.state()).toBe('booting')
  })
})

describe('the power manager after a restart', () => {
  it('carries on a boot under way (no second start) and a shutdown asked for', () => {
    const asked: string[] = []
    let rc = 6_000
    const started = new PowerManager({
      inputs: {
        gpus: () => [
          { id: 'gpu-1', online: false, ready: false },
          { id: 'gpu-2', online: false, ready: false },
        ],
        counts: () => ({ queued: 1, processing: 0 }),
      },
      managed: ['gpu-1', 'gpu-2'],
      auto: true,
      idleMs: IDLE,
      bootDeadlineMs: DEADLINE,
      request: (r) => {
        asked.push(`${r.action}:${r.reason}@${r.gpuId}`)
        return 'new'
      },
      onReady: () => undefined,
      relay: () => rc,
      now: () => rc,
      random: () => 0,
      lastRequestOf: (gpuId) =>
        gpuId === 'gpu-1'
          ? { requestId: 'old', action: 'start', rcAt: 5_000, ready: false, outcome: 'ok' }
          : { requestId: 'stop', action: 'stop', rcAt: 4_000, ready: false, outcome: 'ok' },
    })
    started.tick()
    expect(asked).toEqual([])
    expect(started.get('gpu-1')?.state).toBe('booting')
    // Not heard from since the restart: whether it has gone is not known yet.
    expect(started.get('gpu-2')?.state).toBe('shutting-down')
    rc = 5_000 + DEADLINE
    started.tick()
    expect(asked).toEqual(['start:boot-deadline@gpu-1'])
    // Still silent past the stop's deadline (counted from the stop itself): it went while the
    // gateway was away.
    started.tick()
    expect(started.get('gpu-2')?.state).toBe('off')
  })
  it('takes no new work on a GPU being switched off, also after a start was asked for meanwhile, until it has gone', () => {
    const f = fixture()
    Object.assign(f.world, { online: true, ready: true })
    f.advance(1_000)
    f.advance(IDLE)
    expect(f.asked()).toEqual(['stop:idle'])
    expect(f.manager.takesWork('gpu-1')).toBe(false)
    // A submit while it shuts down: power again, but no claim on the machine going down.
    f.world.queued = 1
    f.manager.submitted()
    expect(f.asked()).toEqual(['stop:idle', 'start:queued'])
    f.advance(1_000)
    expect(f.manager.takesWork('gpu-1')).toBe(false)
    expect(f.state()).toBe('booting')
    // It goes, and comes back: it takes work, and the boot is learned from the start request.
    Object.assign(f.world, { online: false, ready: false })
    f.advance(1_000)
    Object.assign(f.world, { online: true, ready: true })
    f.advance(2_000)
    expect(f.manager.takesWork('gpu-1')).toBe(true)
    expect(f.state()).toBe('online')
    expect(f.boots).toEqual([4_000])
  })

  it('a stop that went through but left the GPU up past the deadline puts it back to work, and stops it again later', () => {
    const f = fixture()
    Object.assign(f.world, { online: true, ready: true })
    f.advance(1_000)
    f.advance(IDLE)
    expect(f.state()).toBe('shutting-down')
    f.advance(DEADLINE - 1)
    expect(f.manager.takesWork('gpu-1')).toBe(false)
    f.advance(1)
    expect(f.manager.takesWork('gpu-1')).toBe(true)
    expect(f.state()).toBe('idle')
    f.advance(IDLE)
    expect(f.asked()).toEqual(['stop:idle', 'stop:idle'])
  })

  it('a GPU that went and came back between two looks (a new epoch) while being switched off takes work again', () => {
    const f = fixture()
    Object.assign(f.world, { online: true, ready: true })
    f.advance(1_000)
    f.advance(IDLE)
    expect(f.state()).toBe('shutting-down')
    expect(f.manager.takesWork('gpu-1')).toBe(false)
    f.world.epoch = 2 // never seen offline: it restarted faster than a tick
    f.advance(1_000)
    expect(f.manager.takesWork('gpu-1')).toBe(true)
    expect(f.state()).toBe('idle')
  })

  it('does not ask for a boot again while the GPU is online with its service loading', () => {
    const f = fixture()
    f.world.queued = 1
    f.manager.submitted()
    f.advance(1_000)
    f.world.online = true // up, its models loading
    f.advance(4 * DEADLINE)
    expect(f.asked()).toEqual(['start:queued'])
  })

  it('measures a boot from its first start request, not from a retry after the deadline', () => {
    const f = fixture()
    f.world.queued = 1
    f.manager.submitted()
    f.advance(DEADLINE)
    expect(f.asked()).toEqual(['start:queued', 'start:boot-deadline'])
    Object.assign(f.world, { online: true, ready: true })
    f.advance(500)
    expect(f.boots).toEqual([DEADLINE + 500])
  })
})
