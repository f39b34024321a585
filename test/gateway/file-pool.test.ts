import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { openDb } from '../../gateway/db.js'
import { FilePool, TOUCH_GRANULARITY_MS } from '../../gateway/file-pool.js'
import { md5Buffer } from '../../lib/hash.js'
import { tempDir } from '../helpers/temp-dir.js'

describe('FilePool', () => {
  it('removes a committed file again when its row cannot be written, and keeps one a row names', async () => {
    const dir = await tempDir('pool-record')
    const db = openDb(join(dir, 'gateway.sqlite'))
    const pool = await FilePool.open(db, join(dir, 'files'))
    const kept = Buffer.from('kept bytes')
    await pool.store(Readable.from([kept]), '.bin', 1)

    const bytes = Buffer.from('bytes whose row never lands')
    const staged = await pool.stage(Readable.from([bytes]))
    await staged.commit()
    db.pragma('query_only = ON') // every write fails from here, reads work (as on a full disk)
    await expect(
      pool.recordCommitted({ hash: staged.hash, ext: '.bin', size: staged.size }, 2),
    ).rejects.toThrow()
    expect(existsSync(pool.pathOf(md5Buffer(bytes)))).toBe(false)
    expect(existsSync(pool.pathOf(md5Buffer(kept)))).toBe(true)
    expect(await readdir(join(dir, 'files', 'tmp'))).toEqual([])
  })

  it('writes the last use of a file only once the recorded one is an hour old (or in the future): reusing a file costs a submit no commit', async () => {
    const dir = await tempDir('pool-touch')
    const db = openDb(join(dir, 'gateway.sqlite'))
    const pool = await FilePool.open(db, join(dir, 'files'))
    const t0 = 1_000_000_000
    const { hash } = await pool.store(Readable.from([Buffer.from('avatar')]), '.mp4', t0)
    const lastUsed = (): unknown =>
      db.prepare('SELECT last_used_at FROM files WHERE hash = ?').pluck().get(hash)
    db.pragma('query_only = ON') // any write would throw from here
    expect(() => {
      pool.touch(hash, t0 + TOUCH_GRANULARITY_MS - 1)
    }).not.toThrow()
    expect(() => {
      pool.touch(hash, t0 + TOUCH_GRANULARITY_MS)
    }).toThrow(/readonly|query_only/i)
    db.pragma('query_only = OFF')
    pool.touch(hash, t0 + TOUCH_GRANULARITY_MS)
    expect(lastUsed()).toBe(t0 + TOUCH_GRANULARITY_MS)
    // The wall clock stepped back: the earlier time is written (retention then keeps it longer).
    pool.touch(hash, t0)
    expect(lastUsed()).toBe(t0)
  })
})
