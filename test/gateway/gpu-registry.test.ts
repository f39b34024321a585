import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { openDb } from '../../gateway/db.js'
import { GpuRegistry } from '../../gateway/gpu-registry.js'
import { silentLogger } from '../../lib/logger.js'
import { tempDir } from '../helpers/temp-dir.js'

async function registry() {
  const db = openDb(join(await tempDir('registry'), 'g.sqlite'))
  onTestFinished(() => {
    db.close()
  })
  const events: string[] = []
  const reg = new GpuRegistry(db, ['gpu-1'], silentLogger(), {
    onOnline: (id) => events.push(`online ${id}`),
    onOffline: (id, why) => events.push(`offline ${id} ${why}`),
  })
  return { reg, events, db }
}

const state = (online: boolean, epoch: number) => ({
  v: 1 as const,
  online,
  epoch,
  heartbeatMs: 1_000,
})

describe('GPU registry', () => {
  it('ignores a will whose epoch is older than the last birth', async () => {
    const { reg, events } = await registry()
    expect(reg.apply('gpu-1', state(true, 4), 0)).toBe('birth')
    expect(reg.apply('gpu-1', state(false, 3), 10)).toBe('stale')
    expect(reg.get('gpu-1')?.online).toBe(true)
    expect(reg.apply('gpu-1', state(false, 4), 20)).toBe('offline')
    expect(events).toEqual(['online gpu-1', 'offline gpu-1 will'])
  })

  it('treats heartbeats of the same epoch as heartbeats, and marks a GPU offline after three missed', async () => {
    const { reg, events } = await registry()
    reg.apply('gpu-1', state(true, 1), 0)
    expect(reg.apply('gpu-1', state(true, 1), 900)).toBe('heartbeat')
    reg.sweep(3_800)
    expect(reg.get('gpu-1')?.online).toBe(true)
    reg.sweep(3_901)
    expect(reg.get('gpu-1')?.online).toBe(false)
    // heard from again: online again (and reconciled)
    expect(reg.apply('gpu-1', state(true, 1), 4_000)).toBe('birth')
    expect(events).toEqual(['online gpu-1', 'offline gpu-1 heartbeat-missed', 'online gpu-1'])
  })

  it('remembers epochs across restarts, so an old will after a restart is still stale', async () => {
    const { reg, db } = await registry()
    reg.apply('gpu-1', state(true, 7), 0)
    const again = new GpuRegistry(db, ['gpu-1'], silentLogger(), {
      onOnline: () => undefined,
      onOffline: () => undefined,
    })
    expect(again.get('gpu-1')).toMatchObject({ online: false, epoch: 7 })
    expect(again.apply('gpu-1', state(false, 6), 10)).toBe('stale')
  })

  it('sends new work to the least-loaded online GPU, else to the GPU seen last', async () => {
    const { reg } = await registry()
    expect(reg.pick(() => 0)).toBe('gpu-1')
    reg.apply('gpu-2', state(true, 1), 100)
    reg.apply('gpu-3', state(true, 1), 200)
    expect(reg.pick((id) => (id === 'gpu-2' ? 5 : 1))).toBe('gpu-3')
    reg.apply('gpu-2', state(false, 1), 300)
    reg.apply('gpu-3', state(false, 1), 400)
    expect(reg.pick(() => 0)).toBe('gpu-3')
  })
})
