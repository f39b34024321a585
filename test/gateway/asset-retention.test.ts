/** The pool's retention sweep and assets: a file an unexpired asset refers to stays. */
import { Readable } from 'node:stream'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { AssetStore } from '../../gateway/assets-store.js'
import { openDb } from '../../gateway/db.js'
import { FilePool } from '../../gateway/file-pool.js'
import { mp4Bytes, wavBytes } from '../helpers/media.js'
import { tempDir } from '../helpers/temp-dir.js'

const DAY = 24 * 60 * 60 * 1000
const RETENTION = 7 * DAY

async function setUp() {
  const dir = await tempDir('asset-retention')
  const db = openDb(join(dir, 'gateway.sqlite'))
  onTestFinished(() => {
    db.close()
  })
  const pool = await FilePool.open(db, join(dir, 'files'))
  return { pool, assets: new AssetStore(db, 30 * DAY) }
}

describe('retention of asset files', () => {
  it('keeps a file an unexpired asset refers to, and lets it go a retention period after the asset expires', async () => {
    const { pool, assets } = await setUp()
    const t0 = 1_000_000_000_000
    const avatar = await pool.store(Readable.from([mp4Bytes('avatar')]), '.mp4', t0)
    const loose = await pool.store(Readable.from([wavBytes('loose')]), '.wav', t0)
    assets.add({ license: 'K', type: 'avatar', name: 'face', file: avatar, now: t0 })

    // Ten days on: the upload nobody keeps is gone, the asset's file stays.
    const tenDays = t0 + 10 * DAY
    expect(await pool.sweep(tenDays - RETENTION)).toBe(1)
    expect(await pool.has(loose.hash)).toBe(false)
    expect(await pool.has(avatar.hash)).toBe(true)

    // The asset expires at 30 days; its file is kept one more retention period.
    expect(await pool.sweep(t0 + 31 * DAY - RETENTION)).toBe(0)
    expect(assets.list('K', null, t0 + 31 * DAY)).toEqual([])
    expect(await pool.sweep(t0 + 38 * DAY - RETENTION)).toBe(1)
    expect(await pool.has(avatar.hash)).toBe(false)
  })

  it('deduplicates per (license, type, md5, ext), and makes an expired one anew', async () => {
    const { pool, assets } = await setUp()
    const t0 = 2_000_000_000_000
    const voice = await pool.store(Readable.from([wavBytes('voice')]), '.wav', t0)
    const first = assets.add({ license: 'K', type: 'voice', name: 'a', file: voice, now: t0 })
    const repeat = assets.add({ license: 'K', type: 'voice', name: 'b', file: voice, now: t0 + 1 })
    expect(repeat).toMatchObject({ deduplicated: true, row: { id: first.row.id, name: 'a' } })
    const asAvatar = assets.add({ license: 'K', type: 'avatar', name: 'c', file: voice, now: t0 })
    const otherOwner = assets.add({ license: 'L', type: 'voice', name: 'd', file: voice, now: t0 })
    expect(new Set([first.row.id, asAvatar.row.id, otherOwner.row.id]).size).toBe(3)
    const later = t0 + 31 * DAY
    const anew = assets.add({ license: 'K', type: 'voice', name: 'e', file: voice, now: later })
    expect(anew).toMatchObject({ deduplicated: false, row: { name: 'e', created_at: later } })
    expect(assets.list('K', 'voice', later).map((r) => r.name)).toEqual(['e'])
  })
})
