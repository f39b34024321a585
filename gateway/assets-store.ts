/**
 * Assets (run_server's `/api/asset/*`): voices and avatars an owner keeps on the server, one row
 * per (license key, type, md5, ext), kept `ttlMs` (30 days) from the upload that made them. The
 * bytes are in the content-addressed pool; the pool's retention keeps a file while an asset
 * refers to it (file-pool.ts). This module owns the `assets` table's writes.
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import type { AssetType, FileRef } from '../protocol/index.js'

export interface AssetRow {
  readonly id: number
  readonly license_key: string
  readonly asset_type: AssetType
  readonly name: string
  readonly file_hash: string
  readonly file_ext: string
  readonly file_size: number
  /** ms since the epoch, like every time in the gateway's database. */
  readonly created_at: number
  readonly expires_at: number
}

export interface NewAsset {
  readonly license: string
  readonly type: AssetType
  readonly name: string
  readonly file: FileRef
  readonly now: number
}

export interface Added {
  readonly row: AssetRow
  /** An unexpired asset of the same file existed: nothing new was made. */
  readonly deduplicated: boolean
}

const COLUMNS =
  'id, license_key, asset_type, name, file_hash, file_ext, file_size, created_at, expires_at'

export class AssetStore {
  readonly #ttlMs: number
  /** `add` in one transaction (wrapped once, like the statements). */
  readonly #add: (asset: NewAsset) => Added
  readonly #byFile: Statement<[string, string, string, string], AssetRow>
  readonly #insert: Statement<
    [
      {
        license: string
        type: string
        name: string
        hash: string
        ext: string
        size: number
        now: number
        expires: number
      },
    ],
    AssetRow
  >
  readonly #listAll: Statement<[string, number], AssetRow>
  readonly #listType: Statement<[string, string, number], AssetRow>
  readonly #delete: Statement<[number, string]>
  readonly #purge: Statement<[number]>

  constructor(db: Db, ttlMs: number) {
    this.#ttlMs = ttlMs
    this.#byFile = db.prepare(
      `SELECT ${COLUMNS} FROM assets
       WHERE license_key = ? AND asset_type = ? AND file_hash = ? AND file_ext = ?`,
    )
    // A row of the same file that has expired is made anew (run_server inserts a fresh one).
    this.#insert = db.prepare(
      `INSERT INTO assets
         (license_key, asset_type, name, file_hash, file_ext, file_size, created_at, expires_at)
       VALUES (@license, @type, @name, @hash, @ext, @size, @now, @expires)
       ON CONFLICT (license_key, asset_type, file_hash, file_ext) DO UPDATE SET
         name = excluded.name, file_size = excluded.file_size,
         created_at = excluded.created_at, expires_at = excluded.expires_at
       RETURNING ${COLUMNS}`,
    )
    this.#listAll = db.prepare(
      `SELECT ${COLUMNS} FROM assets WHERE license_key = ? AND expires_at > ?
       ORDER BY created_at DESC, id DESC`,
    )
    this.#listType = db.prepare(
      `SELECT ${COLUMNS} FROM assets WHERE license_key = ? AND asset_type = ? AND expires_at > ?
       ORDER BY created_at DESC, id DESC`,
    )
    this.#delete = db.prepare('DELETE FROM assets WHERE id = ? AND license_key = ?')
    this.#purge = db.prepare('DELETE FROM assets WHERE expires_at <= ?')
    this.#add = db.transaction((asset: NewAsset) => this.#addNow(asset))
  }

  /** The owner's asset of this file: the unexpired one if there is one, else a new one. */
  add(asset: NewAsset): Added {
    return this.#add(asset)
  }

  /** The owner's unexpired assets (of one type, or all), newest first. */
  list(license: string, type: AssetType | null, now: number): AssetRow[] {
    return type === null ? this.#listAll.all(license, now) : this.#listType.all(license, type, now)
  }

  /** Removes the owner's asset `id`; false when there was none (which is not an error). */
  delete(id: number, license: string): boolean {
    return this.#delete.run(id, license).changes > 0
  }

  /** Forget expired rows (their files then age out of the pool as any other). */
  purgeExpired(now: number): number {
    return this.#purge.run(now).changes
  }

  #addNow(asset: NewAsset): Added {
    const { license, type, file, now } = asset
    const existing = this.#byFile.get(license, type, file.hash, file.ext)
    if (existing && existing.expires_at > now) return { row: existing, deduplicated: true }
    const row = this.#insert.get({
      license,
      type,
      name: asset.name,
      hash: file.hash,
      ext: file.ext,
      size: file.size,
      now,
      expires: now + this.#ttlMs,
    })
    if (!row) throw new Error('asset insert returned no row')
    return { row, deduplicated: false }
  }
}
