import { rm } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { DiskSpace, diskFull, isDiskFullError } from '../../gateway/disk-space.js'
import { appError } from '../../lib/errors.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('DiskSpace', () => {
  it('reads the free space at most once per interval, and a minimum above it refuses', async () => {
    const dir = await tempDir('disk-space')
    let at = 0
    const room = new DiskSpace({ folder: dir, minFreeBytes: 0, clock: () => at })
    expect(room.full()).toBe(false)
    const free = room.freeBytes()
    expect(free).toBeGreaterThan(0)
    const never = new DiskSpace({ folder: dir, minFreeBytes: Number.MAX_SAFE_INTEGER })
    expect(never.full()).toBe(true)
    expect(() => never.assertRoom()).toThrow(
      expect.objectContaining({ code: 'DISK_FULL', status: 507 }),
    )
    // A folder that goes away keeps the last reading (the next write would tell).
    await rm(dir, { recursive: true, force: true })
    at = 5_000
    expect(room.full()).toBe(false)
  })

  it('refuses after a write failed for lack of space until the next reading finds room', async () => {
    const dir = await tempDir('disk-space-fail')
    let at = 0
    const space = new DiskSpace({ folder: dir, minFreeBytes: 0, clock: () => at })
    expect(space.full()).toBe(false)
    expect(space.noteWriteError(new Error('other'))).toBe(false)
    expect(space.full()).toBe(false)
    expect(space.noteWriteError(Object.assign(new Error('no space'), { code: 'ENOSPC' }))).toBe(
      true,
    )
    at = 999
    expect(space.full()).toBe(true)
    at = 1_000
    expect(space.full()).toBe(false)
  })

  it('knows a full disk by ENOSPC, EDQUOT, SQLITE_FULL or DISK_FULL, also as a cause', () => {
    const sqlite = Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' })
    expect(isDiskFullError(sqlite)).toBe(true)
    expect(isDiskFullError(Object.assign(new Error('q'), { code: 'EDQUOT' }))).toBe(true)
    expect(isDiskFullError(appError('UPLOAD_FAILED', { cause: sqlite }))).toBe(true)
    expect(isDiskFullError(diskFull())).toBe(true)
    expect(isDiskFullError(appError('UPLOAD_FAILED'))).toBe(false)
    expect(isDiskFullError(Object.assign(new Error('busy'), { code: 'SQLITE_BUSY' }))).toBe(false)
    expect(isDiskFullError('ENOSPC')).toBe(false)
    expect(isDiskFullError(undefined)).toBe(false)
  })
})
