import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { openDb } from '../../gateway/db.js'
import { FilePool } from '../../gateway/file-pool.js'
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
})
