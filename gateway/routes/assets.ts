/**
 * run_server's asset API (docs/real-services.md §1), kept by the gateway so the H5 app can manage its
 * voices and avatars while the GPU is off (no GPU is involved at all):
 * - `POST /api/asset/upload` (multipart `file`, `license_key`, `asset_type`, `name?`): the file
 *   goes into the pool (audio or video content only) and is kept 30 days; the same file again for
 *   the same owner and type answers the asset it already has.
 * - `GET /api/asset/list?license_key=&asset_type=?`: the owner's assets, newest first.
 * - `POST /api/asset/delete` `{id, license_key}`: `已删除`, also when nothing matched.
 * The license key comes from the form or body, the query, `X-License-Key`, or (the H5 app) the
 * bearer token when that is no credential of the gateway's.
 */
import { Router, type Request } from 'express'
import { extname } from 'node:path'
import { z } from 'zod'
import type { AssetRow } from '../assets-store.js'
import { ok, validate } from '../http-envelope.js'
import { receiveFile } from '../multipart.js'
import { limitKey, type RouteDeps } from './deps.js'
import { extOf, storeMedia } from './upload.js'
import { appError } from '../../lib/errors.js'
import {
  ASSET_PATHS,
  AssetDeleteRequest,
  AssetType,
  type AssetData,
  type AssetListItem,
} from '../../protocol/index.js'

const DAY_MS = 24 * 60 * 60 * 1000

const ListQuery = z.object({ asset_type: z.string().trim().max(20).default('') }).loose()

export function assetApi(deps: RouteDeps): Router {
  const { assets, auth } = deps
  const router = Router({ caseSensitive: true })

  const licenseOf = (req: Request, given: string | undefined): string => {
    const license = given?.trim() || auth.licenseOf(req) || auth.bearerOf(req) || ''
    if (license === '') throw appError('LICENSE_REQUIRED', { variant: 'missing' })
    if (license.length > 200) {
      throw appError('VALIDATION_FAILED', { params: { fields: 'license_key（最长 200 个字符）' } })
    }
    return license
  }

  router.post(
    ASSET_PATHS.upload,
    deps.uploadLimiter.middleware((req) => limitKey(req, auth), '上传'),
    async (req, res) => {
      const { upload, file } = await receiveFile(req, res, {
        pool: deps.pool,
        maxFileBytes: deps.uploadMaxBytes,
        expects: 'file、license_key、asset_type、name',
        missing: 'assetFileMissing',
      })
      try {
        const license = licenseOf(req, upload.field('license_key'))
        const type = AssetType.safeParse(upload.field('asset_type')?.trim())
        if (!type.success) {
          throw appError('VALIDATION_FAILED', { variant: 'assetTypeInvalid' })
        }
        const ext = extOf(undefined, file.filename, type.data === 'voice' ? '.wav' : '.mp4')
        const given = upload.field('name')?.trim() ?? ''
        const name = (given || baseName(file.filename) || 'unnamed').slice(0, 200)
        const stored = await storeMedia(file, ext, deps)
        const now = deps.now()
        assets.purgeExpired(now)
        const added = assets.add({ license, type: type.data, name, file: stored, now })
        // A repeat keeps its row; run_server answers it under the name of this upload.
        const data: AssetData = { ...assetData(added.row), name }
        deps.log.info(
          { assetId: added.row.id, assetType: type.data, deduplicated: added.deduplicated },
          'asset stored',
        )
        ok(res, data, added.deduplicated ? '素材已存在' : '上传成功')
      } finally {
        await upload.settle()
      }
    },
  )

  router.get(ASSET_PATHS.list, (req, res) => {
    const query = validate(ListQuery, req.query, 'query')
    const license = licenseOf(req, undefined)
    const type = query.asset_type === '' ? null : AssetType.safeParse(query.asset_type)
    const now = deps.now()
    // An unknown type matches nothing, as in run_server.
    const rows =
      type === null
        ? assets.list(license, null, now)
        : type.success
          ? assets.list(license, type.data, now)
          : []
    const data: AssetListItem[] = rows.map((row) => ({
      ...assetData(row),
      created_at: row.created_at / 1000,
      days_left: Math.max(0, Math.floor((row.expires_at - now) / DAY_MS)),
    }))
    ok(res, data)
  })

  router.post(ASSET_PATHS.delete, (req, res) => {
    const body = validate(AssetDeleteRequest, req.body ?? {}, 'body')
    const license = body.license_key || auth.licenseOf(req) || auth.bearerOf(req) || ''
    if (body.id === 0 || license === '') {
      throw appError('VALIDATION_FAILED', { variant: 'assetDeleteIncomplete' })
    }
    const deleted = assets.delete(body.id, license)
    ok(res, { id: body.id, deleted }, '已删除')
  })

  return router
}

function assetData(row: AssetRow): AssetData {
  return {
    id: row.id,
    name: row.name,
    asset_type: row.asset_type,
    file_hash: row.file_hash,
    file_ext: row.file_ext,
    file_size: row.file_size,
  }
}

function baseName(filename: string): string {
  return filename.slice(0, filename.length - extname(filename).length)
}
