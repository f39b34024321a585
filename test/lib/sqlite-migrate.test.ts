import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { migrate } from '../../lib/sqlite-migrate.js'
import { tempDir } from '../helpers/temp-dir.js'

async function open(name: string): Promise<Database.Database> {
  const db = new Database(join(await tempDir(name), 'db.sqlite'))
  onTestFinished(() => {
    db.close()
  })
  return db
}

const version = (db: Database.Database): number =>
  db.pragma('user_version', { simple: true }) as number

describe('numbered SQLite migrations', () => {
  it('applies the steps in order and records how many under user_version', async () => {
    const db = await open('migrate-order')
    const steps = [
      'CREATE TABLE t (a INTEGER)',
      'ALTER TABLE t ADD COLUMN b TEXT',
      "INSERT INTO t (a, b) VALUES (1, 'x')",
    ]
    expect(migrate(db, steps)).toBe(3)
    expect(version(db)).toBe(3)
    expect(db.prepare('SELECT a, b FROM t').all()).toEqual([{ a: 1, b: 'x' }])
  })

  it('applies only the steps appended since the last open', async () => {
    const db = await open('migrate-resume')
    migrate(db, ['CREATE TABLE t (a INTEGER)', 'INSERT INTO t (a) VALUES (1)'])
    migrate(db, [
      'CREATE TABLE t (a INTEGER)',
      'INSERT INTO t (a) VALUES (1)',
      'INSERT INTO t (a) VALUES (2)',
    ])
    expect(version(db)).toBe(3)
    expect(db.prepare('SELECT a FROM t ORDER BY a').all()).toEqual([{ a: 1 }, { a: 2 }])
  })

  it('leaves a database at its last whole step when a step fails', async () => {
    const db = await open('migrate-fail')
    const steps = [
      'CREATE TABLE t (a INTEGER)',
      'INSERT INTO t (a) VALUES (1); INSERT INTO missing (a) VALUES (2)',
    ]
    expect(() => migrate(db, steps)).toThrow(/missing/)
    expect(version(db)).toBe(1)
    expect(db.prepare('SELECT COUNT(*) AS n FROM t').get()).toEqual({ n: 0 })
  })
})
