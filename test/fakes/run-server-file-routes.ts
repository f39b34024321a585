/**
 * The md5 file pool's routes: `POST /api/heygem/check_files` and `POST /api/heygem/upload_file`
 * (docs/real-services.md §1). Neither reply has a `msg`; the upload answers exactly `{hash, server_path}`.
 */
import { realpath } from 'node:fs/promises'
import { extname } from 'node:path'
import { FlaskCrash, sendFailure, sendJson, type Json } from './flask-reply.js'
import { asDict, readJsonBody, strField } from './flask-request.js'
import type { RouteHandler } from './run-server-context.js'
import { isNonEmptyFile, touch } from './run-server-files.js'
import { readForm } from './run-server-multipart.js'

/** The items of `data.get("files", [])` as Python iterates them: a list, or an empty str/dict. */
function fileItems(value: unknown): readonly unknown[] {
  if (Array.isArray(value)) return value
  if (
    value === '' ||
    (typeof value === 'object' && value !== null && Object.keys(value).length === 0)
  ) {
    return []
  }
  throw new FlaskCrash('files is not a list of dicts')
}

/** `{files:[{hash, ext}]}` → `{code:0, data:{hash: bool}}`; a hit refreshes the file's mtime. */
export const checkFiles: RouteHandler = async (req, res, ctx) => {
  const body = await readJsonBody(req)
  if (!body.ok) {
    sendFailure(res, 400, '请求体必须是合法的JSON')
    return
  }
  const data = asDict(body.value)
  const items = Object.hasOwn(data, 'files') ? fileItems(data.files) : []
  const result: Record<string, Json> = {}
  for (const item of items) {
    const dict = asDict(item, 'files item')
    const hash = strField(dict, 'hash')
    const ext = strField(dict, 'ext')
    if (hash === '') continue
    const exists = await ctx.disk.storeHas(hash, ext)
    if (exists) await touch(ctx.disk.storePath(hash, ext))
    result[hash] = exists
  }
  sendJson(res, 200, { code: 0, data: result })
}

/**
 * Multipart `file`, `hash` (any non-empty text), `ext` (else from the file name, else `.bin`).
 * Present under the claimed name → kept as is (mtime refreshed), the claimed hash answered;
 * otherwise stored under its real md5, which is answered (the H5 app sends `tmp_…` on purpose).
 */
export const uploadFile: RouteHandler = async (req, res, ctx) => {
  const form = await readForm(req, {
    tempPath: () => ctx.disk.tempPath(),
    discard: (p) => ctx.disk.discard(p),
  })
  try {
    const file = form.files.get('file')
    const claimed = (form.fields.get('hash') ?? '').trim()
    if (!file) {
      sendFailure(res, 400, '缺少 file 字段')
      return
    }
    if (claimed === '') {
      sendFailure(res, 400, '缺少 hash 字段')
      return
    }
    const ext = (form.fields.get('ext') ?? '').trim() || extname(file.filename) || '.bin'
    const claimedPath = ctx.disk.storePath(claimed, ext)
    let hash = claimed
    let path = claimedPath
    if (await isNonEmptyFile(claimedPath)) {
      await touch(claimedPath)
    } else {
      hash = file.hash
      path = ctx.disk.storePath(file.hash, ext)
      await ctx.disk.place(file.path, path)
      if (hash !== claimed)
        ctx.log.warn({ claimed, hash }, 'upload hash mismatch, stored under md5')
    }
    ctx.events.upload(hash, file.size)
    sendJson(res, 200, { code: 0, data: { hash, server_path: await realpath(path) } })
  } finally {
    await form.discardAll()
  }
}
