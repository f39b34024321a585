import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openDb } from '../../gateway/db.js'
import { RelayClock } from '../../gateway/relay-clock.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('the relay clock', () => {
  it('advances only by monotonic time while it runs, and carries on after a restart without counting the downtime', async () => {
    const path = join(await tempDir('relay-clock'), 'g.sqlite')
    let mono = 1_000
    const db = openDb(path)
    const clock = new RelayClock(db, () => mono)
    const start = clock.now()
    // Started at the wall clock of the migration.
    expect(Math.abs(start - Date.now())).toBeLessThan(60_000)
    mono += 4_000
    expect(clock.now()).toBe(start + 4_000)
    clock.tick() // under 5 s since the last save: nothing written
    expect(new RelayClock(db, () => 0).now()).toBe(start)
    mono += 2_000
    clock.tick()
    expect(new RelayClock(db, () => 0).now()).toBe(start + 6_000)
    mono += 500
    clock.persist()
    db.close()

    // A day later, on a machine whose monotonic clock restarted from zero.
    mono = 0
    const again = openDb(path)
    const after = new RelayClock(again, () => mono)
    expect(after.now()).toBe(start + 6_500)
    mono += 1_000
    expect(after.now()).toBe(start + 7_500)
    again.close()
  })
})
