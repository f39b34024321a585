/**
 * run_server's voice and avatar assets (`/api/asset/upload|list|delete`, docs/real-services.md §1): records
 * per license key, deduplicated per (license, type, md5, ext) while unexpired, kept 30 days, files
 * in the shared pool `store/{md5}{ext}`. The real one keeps them in SQLite next to the program, so
 * they outlive a restart: here they live as long as the fake's handle.
 */
import { extname } from 'node:path'
import { FlaskCrash, sendFailure, sendJson, type Json } from './flask-reply.js'
import { asDict, queryArg, readJsonBody, strField } from './flask-request.js'
import type { RouteHandler } from './run-server-context.js'
import { isNonEmptyFile, touch } from './run-server-files.js'
import { readForm } from './run-server-multipart.js'

const DAY_S = 86_400

interface AssetRecord {
  readonly id: number
  readonly licenseKey: string
  readonly assetType: string
  readonly name: string
  readonly fileHash: string
  readonly fileExt: string
  readonly filePath: string
  readonly fileSize: number
  /** Epoch seconds. */
  readonly createdAt: number
  readonly expiresAt: number
}

export class RunServerAssets {
  readonly #records: AssetRecord[] = []
  readonly #ttlSeconds: number
  #nextId = 1

  constructor(ttlSeconds: number) {
    this.#ttlSeconds = ttlSeconds
  }

  find(query: { licenseKey: string; assetType: string; hash: string; ext: string }, now: number) {
    return this.#records
      .filter(
        (r) =>
          r.licenseKey === query.licenseKey &&
          r.assetType === query.assetType &&
          r.fileHash === query.hash &&
          r.fileExt === query.ext &&
          r.expiresAt > now,
      )
      .at(-1)
  }

  add(record: Omit<AssetRecord, 'id' | 'createdAt' | 'expiresAt'>, now: number): AssetRecord {
    const added = {
      ...record,
      id: this.#nextId++,
      createdAt: now,
      expiresAt: now + this.#ttlSeconds,
    }
    this.#records.push(added)
    return added
  }

  /** Unexpired records of a license, newest first, optionally of one type. */
  list(licenseKey: string, assetType: string, now: number): readonly AssetRecord[] {
    return this.#records
      .filter((r) => r.licenseKey === licenseKey && r.expiresAt > now)
      .filter((r) => assetType === '' || r.assetType === assetType)
      .reverse()
  }

  /** Remove matching records; their files paths are returned (the real one deletes them). */
  remove(match: (r: AssetRecord) => boolean): readonly string[] {
    const removed = this.#records.filter(match)
    for (const r of removed) this.#records.splice(this.#records.indexOf(r), 1)
    return removed.map((r) => r.filePath)
  }
}

function nowSeconds(): number {
  return Date.now() / 1000
}

export const assetUpload: RouteHandler = async (req, res, ctx) => {
  const form = await readForm(req, {
    tempPath: () => ctx.disk.tempPath(),
    discard: (p) => ctx.disk.discard(p),
  })
  try {
    const file = form.files.get('file')
    const licenseKey = (form.fields.get('license_key') ?? '').trim()
    const assetType = (form.fields.get('asset_type') ?? '').trim()
    const refusal = !file
      ? '缺少 file'
      : licenseKey === ''
        ? '缺少 license_key'
        : assetType !== 'voice' && assetType !== 'avatar'
          ? 'asset_type 必须为 voice 或 avatar'
          : null
    if (!file || refusal !== null) {
      sendFailure(res, 400, refusal ?? '缺少 file')
      return
    }
    const fileExt = extname(file.filename)
    const stem = file.filename.slice(0, file.filename.length - fileExt.length)
    const name = (form.fields.get('name') ?? '').trim() || stem
    const ext = fileExt || (assetType === 'voice' ? '.wav' : '.mp4')
    const now = nowSeconds()
    const dest = ctx.disk.storePath(file.hash, ext)
    const existing = ctx.assets.find({ licenseKey, assetType, hash: file.hash, ext }, now)
    const record =
      existing ??
      ctx.assets.add(
        {
          licenseKey,
          assetType,
          name,
          fileHash: file.hash,
          fileExt: ext,
          filePath: dest,
          fileSize: file.size,
        },
        now,
      )
    if (existing) await touch(dest)
    else if (!(await isNonEmptyFile(dest))) await ctx.disk.place(file.path, dest)
    const data: Json = {
      id: record.id,
      name: existing ? name || existing.name : name,
      asset_type: assetType,
      file_hash: record.fileHash,
      file_ext: record.fileExt,
      file_size: record.fileSize,
    }
    sendJson(res, 200, { code: 0, data })
  } finally {
    await form.discardAll()
  }
}

export const assetList: RouteHandler = (req, res, ctx) => {
  const licenseKey = queryArg(req, 'license_key')
  const assetType = queryArg(req, 'asset_type')
  if (licenseKey === '') {
    sendFailure(res, 400, '缺少 license_key')
    return Promise.resolve()
  }
  const now = nowSeconds()
  const items: Json[] = ctx.assets.list(licenseKey, assetType, now).map((r) => ({
    id: r.id,
    asset_type: r.assetType,
    name: r.name,
    file_hash: r.fileHash,
    file_ext: r.fileExt,
    file_size: r.fileSize,
    created_at: r.createdAt,
    days_left: Math.max(0, Math.floor((r.expiresAt - now) / DAY_S)),
  }))
  sendJson(res, 200, { code: 0, data: items })
  return Promise.resolve()
}

/** `{id, license_key}` → `{code:0, msg:"已删除"}`, also when nothing matched; the file goes too. */
export const assetDelete: RouteHandler = async (req, res, ctx) => {
  const body = await readJsonBody(req)
  if (!body.ok) {
    sendFailure(res, 400, '请求体必须是合法JSON')
    return
  }
  const data = asDict(body.value)
  const id = Object.hasOwn(data, 'id') ? data.id : 0
  const licenseKey = strField(data, 'license_key')
  if (!id || licenseKey === '') {
    sendFailure(res, 400, '缺少 id 或 license_key')
    return
  }
  // SQLite compares `id=?` numerically for a number or a string of digits; a dict cannot bind.
  if (typeof id !== 'number' && typeof id !== 'string') throw new FlaskCrash('id cannot bind')
  const wanted = String(id).trim()
  const paths = ctx.assets.remove((r) => String(r.id) === wanted && r.licenseKey === licenseKey)
  for (const path of paths) await ctx.disk.discard(path)
  sendJson(res, 200, { code: 0, msg: '已删除' })
}

/** Expired records and their files, for the TTL sweep. */
export async function sweepAssets(
  assets: RunServerAssets,
  discard: (path: string) => Promise<void>,
): Promise<number> {
  const now = nowSeconds()
  const paths = assets.remove((r) => r.expiresAt < now)
  for (const path of paths) await discard(path)
  return paths.length
}
