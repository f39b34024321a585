/**
 * Content-addressed file pool (docs/design.md §6): every file is stored under the md5 of its bytes.
 * Writes stream into a temporary file while hashing, then rename into place, so a file under its
 * hash is always complete; a claimed hash that does not match is stored under the real one.
 */
import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Readable, Transform } from 'node:stream'
import type { Statement } from 'better-sqlite3'
import { pipeline } from 'node:stream/promises'
import type { Db } from './db.js'
import { DiskSpace, diskFull } from './disk-space.js'
import { Md5Tap } from '../lib/hash.js'
import type { FileRef } from '../protocol/index.js'

/** Bytes hashed into a temporary file, waiting to be committed to the pool or discarded. */
export interface Staged {
  readonly hash: string
  readonly size: number
  commit(): Promise<void>
  discard(): Promise<void>
}

export interface FilePoolOptions {
  /** New files are refused (DISK_FULL) while the disk has less free space than this. */
  readonly minFreeBytes?: number
}

/**
 * A last use is written only once the recorded one is this much older: retention counts in days,
 * and a submit that reuses an avatar (most do) then costs no commit of its own.
 */
export const TOUCH_GRANULARITY_MS = 60 * 60 * 1000

/** A file no remaining task refers to, not used since `cutoff`, that no unexpired asset keeps. */
const UNUSED = `COALESCE(last_used_at, created_at) <= @cutoff
  AND hash NOT IN (SELECT audio_hash FROM tasks)
  AND hash NOT IN (SELECT video_hash FROM tasks)
  AND hash NOT IN (SELECT result_hash FROM tasks WHERE result_hash IS NOT NULL)
  AND hash NOT IN (SELECT stored_result_hash FROM tasks WHERE stored_result_hash IS NOT NULL)
  AND hash NOT IN (SELECT file_hash FROM assets WHERE expires_at > @cutoff)`

export class FilePool {
  readonly #get: Statement<[string], FileRef>
  readonly #record: Statement<[string, string, number, number, number, number | null]>
  readonly #touch: Statement<[number, string]>
  readonly #lastUsed: Statement<[string], { readonly at: number }>
  readonly #stale: Statement<[{ cutoff: number }], { hash: string }>
  readonly #removeUnused: Statement<[{ hash: string; cutoff: number }]>
  readonly #root: string
  readonly #tmp: string
  /** The data disk's free space: uploads and submits ask it first (disk-space.ts). */
  readonly space: DiskSpace

  private constructor(db: Db, root: string, opts: FilePoolOptions) {
    this.#get = db.prepare('SELECT hash, ext, size FROM files WHERE hash = ?')
    this.#record = db.prepare(
      `INSERT INTO files (hash, ext, size, created_at, last_used_at, audio_ms)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (hash) DO UPDATE SET size = excluded.size, last_used_at = excluded.last_used_at,
         audio_ms = COALESCE(excluded.audio_ms, audio_ms)`,
    )
    this.#touch = db.prepare('UPDATE files SET last_used_at = ? WHERE hash = ?')
    this.#lastUsed = db.prepare(
      'SELECT COALESCE(last_used_at, created_at) AS at FROM files WHERE hash = ?',
    )
    this.#stale = db.prepare(`SELECT hash FROM files WHERE ${UNUSED} LIMIT 1000`)
    this.#removeUnused = db.prepare(`DELETE FROM files WHERE hash = @hash AND ${UNUSED}`)
    this.#root = root
    this.#tmp = join(root, 'tmp')
    this.space = new DiskSpace({ folder: root, minFreeBytes: opts.minFreeBytes ?? 0 })
  }

  static async open(db: Db, folder: string, opts: FilePoolOptions = {}): Promise<FilePool> {
    const root = resolve(folder) // absolute: express' sendFile needs it
    await mkdir(join(root, 'tmp'), { recursive: true })
    // Partial uploads from a previous run are garbage.
    await rm(join(root, 'tmp'), { recursive: true, force: true })
    await mkdir(join(root, 'tmp'), { recursive: true })
    return new FilePool(db, root, opts)
  }

  /** Throw DISK_FULL (507) while the data disk is full. */
  assertRoom(): void {
    this.space.assertRoom()
  }

  /** At shutdown: staged bytes nobody will commit are removed (never the pool's files). */
  async close(): Promise<void> {
    const names = await readdir(this.#tmp).catch(() => [])
    await Promise.all(names.map((name) => rm(join(this.#tmp, name), { force: true })))
  }

  pathOf(hash: string): string {
    return join(this.#root, hash.slice(0, 2), hash)
  }

  get(hash: string): FileRef | undefined {
    return this.#get.get(hash)
  }

  /** Present in the index and on disk with the recorded size. */
  async has(hash: string): Promise<boolean> {
    const row = this.get(hash)
    if (!row) return false
    try {
      const info = await stat(this.pathOf(hash))
      return info.size === row.size
    } catch {
      return false
    }
  }

  /**
   * Stream `source` into a temporary file while hashing it. Nothing is in the pool until the
   * caller commits (after checking what came with the bytes); a discarded file leaves no trace.
   * `through` (a sniffer) sees the bytes before they are hashed and written.
   */
  async stage(source: Readable, through?: Transform): Promise<Staged> {
    const tmpPath = join(this.#tmp, randomUUID())
    const tap = new Md5Tap()
    try {
      if (through) await pipeline(source, through, tap, createWriteStream(tmpPath))
      else await pipeline(source, tap, createWriteStream(tmpPath))
    } catch (err) {
      await rm(tmpPath, { force: true })
      // A full disk is the caller's 507 (and refuses new uploads for a moment).
      if (this.space.noteWriteError(err)) throw diskFull(err)
      throw err
    }
    const { hash, size } = tap.result()
    return {
      hash,
      size,
      commit: async () => {
        try {
          const folder = join(this.#root, hash.slice(0, 2))
          await mkdir(folder, { recursive: true })
          // Durable before it is answered: the bytes, then the name (a power loss after the
          // reply must not leave a row naming an empty or missing file).
          await syncPath(tmpPath, 'r+')
          await rename(tmpPath, this.pathOf(hash))
          await syncPath(folder, 'r')
        } catch (err) {
          if (this.space.noteWriteError(err)) throw diskFull(err)
          throw err
        } finally {
          await rm(tmpPath, { force: true })
        }
      },
      discard: () => rm(tmpPath, { force: true }),
    }
  }

  /** `audioMs`: how long it plays, where its header tells (wav-duration.ts); null: unknown. */
  record(file: FileRef, now: number, audioMs: number | null = null): void {
    this.#record.run(file.hash, file.ext, file.size, now, now, audioMs)
  }

  /** Asked for (check_files, submit): kept for another retention period. */
  touch(hash: string, now: number): void {
    const last = this.#lastUsed.get(hash)?.at
    if (last !== undefined && now >= last && now - last < TOUCH_GRANULARITY_MS) return
    this.#touch.run(now, hash)
  }

  /**
   * Retention: remove files not used since `cutoff` that no remaining task refers to (inputs of
   * purged tasks, their results, uploads never submitted) and no asset keeps. An asset keeps its
   * file while it has not expired, and for one more retention period after (its expiry counts as
   * the file's last use). Returns how many went.
   */
  async sweep(cutoff: number): Promise<number> {
    const stale = this.#stale.all({ cutoff })
    let removed = 0
    for (const { hash } of stale) {
      // Checked again as it goes: a submit may have taken the file up since the SELECT, and one
      // that comes after this DELETE finds no file and says so.
      const gone = this.#removeUnused.run({ hash, cutoff }).changes
      if (gone === 0) continue
      await rm(this.pathOf(hash), { force: true })
      removed++
    }
    return removed
  }

  /** `stage`, `commit` and `record`: for bytes that need no checks (results from a GPU). */
  async store(source: Readable, ext: string, now: number): Promise<FileRef> {
    const staged = await this.stage(source)
    await staged.commit()
    const file = { hash: staged.hash, ext, size: staged.size }
    await this.recordCommitted(file, now)
    return file
  }

  /**
   * `record` for a file just committed: when the row cannot be written (a full disk), a file no
   * row names is removed again, so the pool keeps no bytes its retention cannot see.
   */
  async recordCommitted(file: FileRef, now: number, audioMs: number | null = null): Promise<void> {
    try {
      this.record(file, now, audioMs)
    } catch (err) {
      if (!this.get(file.hash)) await rm(this.pathOf(file.hash), { force: true })
      if (this.space.noteWriteError(err)) throw diskFull(err)
      throw err
    }
  }
}

/** fsync of a file's data (`r+`) or of a folder's entries (`r`). */
async function syncPath(path: string, flags: 'r' | 'r+'): Promise<void> {
  const handle = await open(path, flags)
  try {
    if (flags === 'r+') await handle.datasync()
    else await handle.sync()
  } finally {
    await handle.close()
  }
}
