import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { openDb } from '../../gateway/db.js'
import { GpuRegistry, type RegistryEvents } from '../../gateway/gpu-registry.js'
import { silentLogger } from '../../lib/logger.js'
import type { GpuState } from '../../protocol/index.js'
import { tempDir } from '../helpers/temp-dir.js'

function recorder(): { events: string[]; handlers: RegistryEvents } {
  const events: string[] = []
  return {
    events,
    handlers: {
      onOnline: (b) => events.push(`birth ${b.gpuId} ${String(b.epoch)}`),
      onPresumedOnline: (id) => events.push(`ask-rebirth ${id}`),
      onOffline: (id, why) => events.push(`offline ${id} ${why}`),
    },
  }
}

async function registry() {
  const db = openDb(join(await tempDir('registry'), 'g.sqlite'))
  onTestFinished(() => {
    db.close()
  })
  const { events, handlers } = recorder()
  const reg = new GpuRegistry({ db, knownIds: ['gpu-1'], log: silentLogger(), events: handlers })
  return { reg, events, db }
}

const birth = (epoch: number): GpuState => ({
  v: 1,
  online: true,
  epoch,
  heartbeatMs: 1_000,
  reason: 'birth',
  holding: [],
})
const beat = (epoch: number): GpuState => ({
  v: 1,
  online: true,
  epoch,
  heartbeatMs: 1_000,
  reason: 'heartbeat',
})
const will = (epoch: number): GpuState => ({ v: 1, online: false, epoch })
const LIVE = false
const RETAINED = true

describe('GPU registry', () => {
  it('measures heartbeat gaps on the elapsed clock: a wall-clock step marks no GPU offline', async () => {
    const db = openDb(join(await tempDir('registry'), 'g.sqlite'))
    onTestFinished(() => {
      db.close()
    })
    const { events, handlers } = recorder()
    let elapsed = 0
    const reg = new GpuRegistry({
      db,
      knownIds: ['gpu-1'],
      log: silentLogger(),
      events: {
        ...handlers,
        elapsed: () => elapsed,
      },
    })
    const wall = Date.UTC(2026, 0, 1)
    expect(reg.apply('gpu-1', birth(5), { now: wall, retained: LIVE })).toBe('birth')
    elapsed = 500
    // The wall clock jumps a day ahead (NTP, a resumed VM); half a second has really passed.
    reg.sweep(wall + 86_400_000)
    expect(reg.get('gpu-1')?.online).toBe(true)
    // Three intervals really pass without a word: offline, whatever the wall clock says.
    elapsed = 3_501
    reg.sweep(wall)
    expect(reg.get('gpu-1')?.online).toBe(false)
    expect(events).toEqual(['birth gpu-1 5', 'offline gpu-1 heartbeat-missed'])
  })

  it('ignores a will whose epoch is older than the last birth', async () => {
    const { reg, events } = await registry()
    expect(reg.apply('gpu-1', birth(4), { now: 0, retained: LIVE })).toBe('birth')
    expect(reg.apply('gpu-1', will(3), { now: 10, retained: LIVE })).toBe('stale')
    expect(reg.get('gpu-1')?.online).toBe(true)
    expect(reg.apply('gpu-1', will(4), { now: 20, retained: LIVE })).toBe('offline')
    expect(events).toEqual(['birth gpu-1 4', 'offline gpu-1 will'])
  })

  it('reconciles only a live birth: a retained copy or a heartbeat after a gap asks for a fresh birth', async () => {
    const { reg, events } = await registry()
    // After a gateway restart the broker replays the last retained state (even an old birth).
    expect(reg.apply('gpu-1', birth(5), { now: 0, retained: RETAINED })).toBe('presumed')
    expect(reg.get('gpu-1')?.online).toBe(true)
    expect(reg.apply('gpu-1', birth(5), { now: 10, retained: LIVE })).toBe('birth')
    expect(reg.apply('gpu-1', beat(5), { now: 900, retained: LIVE })).toBe('heartbeat')
    // Three heartbeats missed: offline. Heard from again: online, but only a birth reconciles.
    reg.sweep(3_901)
    expect(reg.get('gpu-1')?.online).toBe(false)
    expect(reg.apply('gpu-1', beat(5), { now: 4_000, retained: LIVE })).toBe('presumed')
    // A heartbeat with an epoch we never saw born: the birth was missed.
    expect(reg.apply('gpu-1', beat(6), { now: 4_100, retained: LIVE })).toBe('presumed')
    expect(events).toEqual([
      'ask-rebirth gpu-1',
      'birth gpu-1 5',
      'offline gpu-1 heartbeat-missed',
      'ask-rebirth gpu-1',
      'ask-rebirth gpu-1',
    ])
  })

  it('accepts a re-installed bridge whose recorded epoch came from a clock far ahead, but never through a will or a retained copy', async () => {
    const { reg, events } = await registry()
    const now = 1_800_000_000_000
    const farAhead = now + 30 * 86_400_000
    expect(reg.apply('gpu-1', birth(farAhead), { now: now, retained: LIVE })).toBe('birth')
    expect(reg.apply('gpu-1', will(now + 5), { now: now + 10, retained: LIVE })).toBe('stale')
    expect(reg.apply('gpu-1', birth(now + 5), { now: now + 10, retained: RETAINED })).toBe('stale')
    expect(reg.apply('gpu-1', birth(now + 20), { now: now + 30, retained: LIVE })).toBe('birth')
    expect(reg.get('gpu-1')).toMatchObject({ online: true, epoch: now + 20 })
    // From then on the ordinary rule: an older epoch is stale, a birth too.
    expect(reg.apply('gpu-1', will(now + 5), { now: now + 40, retained: LIVE })).toBe('stale')
    expect(reg.apply('gpu-1', birth(now + 6), { now: now + 50, retained: LIVE })).toBe('stale')
    expect(events).toEqual([`birth gpu-1 ${String(farAhead)}`, `birth gpu-1 ${String(now + 20)}`])
  })

  it('remembers epochs across restarts, so an old will after a restart is still stale', async () => {
    const { reg, db } = await registry()
    reg.apply('gpu-1', birth(7), { now: 0, retained: LIVE })
    const again = new GpuRegistry({
      db,
      knownIds: ['gpu-1'],
      log: silentLogger(),
      events: recorder().handlers,
    })
    expect(again.get('gpu-1')).toMatchObject({ online: false, epoch: 7 })
    expect(again.apply('gpu-1', will(6), { now: 10, retained: LIVE })).toBe('stale')
  })

  it("keeps each GPU's types, capacity and whether its births say they pull offers", async () => {
    const { reg } = await registry()
    reg.apply('gpu-1', birth(1), { now: 0, retained: LIVE })
    expect(reg.get('gpu-1')).toMatchObject({ types: ['heygem'], capacity: 1, pullsOffers: false })
    const puller: GpuState = { ...birth(2), types: ['heygem', 'tts'], capacity: 3, session: 'new' }
    reg.apply('gpu-2', puller, { now: 10, retained: LIVE })
    reg.apply('gpu-2', beat(2), { now: 20, retained: LIVE }) // a heartbeat keeps what the birth said
    expect(reg.get('gpu-2')).toMatchObject({ capacity: 3, pullsOffers: true })
    expect(reg.typesOf('gpu-2')).toEqual(['heygem', 'tts'])
    expect(reg.typesOf('gpu-9')).toEqual(['heygem'])
  })
})
