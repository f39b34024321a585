/**
 * Uploads into the pool, as run_server takes them (docs/real-services.md §1), all through one streamed
 * receiver (multipart.ts):
 * - `POST /api/heygem/upload_file` (multipart `file`, `hash`, `ext`): `hash` may be any string
 *   (the H5 app sends `tmp_…`); the file is stored and answered under its real md5.
 * - `POST /api/heygem/upload` (legacy: multipart `audio` and `video`): both stored, then queued
 *   like a submit, with the same reply.
 * Whatever the name says, only audio or video content gets in (decided from the bytes).
 */
import { Router, type Request } from 'express'
import { extname } from 'node:path'
import { ok } from '../http-envelope.js'
import { assertComplete, receiveFile, receiveMultipart, type ReceivedFile } from '../multipart.js'
import { limitKey, type RouteDeps } from './deps.js'
import { submitData, submitMessage } from './submit-shared.js'
import { probeWavMs } from '../wav-duration.js'
import { appError } from '../../lib/errors.js'
import { Ext, HEYGEM_PATHS, type FileRef, type UploadFileData } from '../../protocol/index.js'

export function uploadApi(deps: RouteDeps): Router {
  const router = Router({ caseSensitive: true })

  router.post(
    HEYGEM_PATHS.uploadFile,
    deps.uploadLimiter.middleware((req) => limitKey(req, deps.auth), '上传'),
    async (req, res) => {
      const { upload, file } = await receiveFile(req, res, {
        pool: deps.pool,
        maxFileBytes: deps.uploadMaxBytes,
        expects: 'file、hash、ext',
        missing: 'fileFieldMissing',
      })
      try {
        const claimed = upload.field('hash')?.trim() ?? ''
        if (claimed === '') throw appError('VALIDATION_FAILED', { variant: 'hashFieldMissing' })
        if (claimed.length > 200) {
          throw appError('VALIDATION_FAILED', { params: { fields: 'hash（最长 200 个字符）' } })
        }
        const ext = extOf(upload.field('ext'), file.filename, '.bin')
        const stored = await storeMedia(file, ext, deps)
        const data: UploadFileData = {
          hash: stored.hash,
          server_path: `store/${stored.hash}${stored.ext}`,
          ext: stored.ext,
          size: stored.size,
          hash_matched: claimed.toLowerCase() === stored.hash,
        }
        ok(res, data, data.hash_matched ? '上传成功' : '文件内容与所给哈希不符，已按实际哈希保存')
      } finally {
        await upload.settle()
      }
    },
  )

  router.post(
    HEYGEM_PATHS.upload,
    deps.submitLimiter.middleware((req) => limitKey(req, deps.auth), '提交'),
    deps.uploadLimiter.middleware((req) => limitKey(req, deps.auth), '上传'),
    async (req, res) => {
      const upload = await receiveMultipart(req, res, {
        pool: deps.pool,
        maxFileBytes: deps.uploadMaxBytes,
        fileFields: ['audio', 'video'],
        expects: 'audio、video',
      })
      try {
        const audioFile = upload.file('audio')
        const videoFile = upload.file('video')
        if (!audioFile || !videoFile) {
          throw appError('VALIDATION_FAILED', { variant: 'uploadFilesMissing' })
        }
        assertComplete(audioFile, deps.uploadMaxBytes)
        assertComplete(videoFile, deps.uploadMaxBytes)
        const audioExt = extOf(undefined, audioFile.filename, '.wav')
        const videoExt = extOf(undefined, videoFile.filename, '.mp4')
        assertMedia(audioFile)
        assertMedia(videoFile)
        const audio = await storeMedia(audioFile, audioExt, deps)
        const video = await storeMedia(videoFile, videoExt, deps)
        const view = await deps.actions.submit({
          owner: ownerOf(req, deps, upload.field('license_key')),
          source: 'heygem-api',
          audio: { hash: audio.hash, ext: audio.ext },
          video: { hash: video.hash, ext: video.ext },
          requestKey: null,
        })
        ok(res, submitData(view, deps), submitMessage(view))
      } finally {
        await upload.settle()
      }
    },
  )
  return router
}

function ownerOf(req: Request, deps: RouteDeps, field: string | undefined): string | null {
  const license = field?.trim() ?? ''
  return license !== '' ? license.slice(0, 200) : deps.auth.licenseOf(req)
}

/** A file name may carry an extension, never a path. */
export function assertPlainName(name: string): void {
  if (name.includes('..') || name.includes('/') || name.includes('\\') || name.includes('\0')) {
    throw appError('BAD_FILENAME')
  }
}

/**
 * The extension a file is stored and named under: the `ext` field, else the file name's, else
 * `fallback`. Any extension is accepted, as long as it is a short run of letters and digits (it
 * becomes part of a file name on the GPU machine).
 */
export function extOf(field: string | undefined, filename: string, fallback: string): string {
  assertPlainName(filename)
  const given = field?.trim() ?? ''
  if (given !== '') assertPlainName(given)
  const raw = given !== '' ? given : extname(filename) || fallback
  const ext = Ext.safeParse(raw)
  if (!ext.success) {
    throw appError('VALIDATION_FAILED', {
      params: { fields: 'ext（扩展名只能是 1–10 个字母或数字）' },
    })
  }
  return ext.data
}

/** Only audio or video content, decided from the bytes (not the name). */
export function assertMedia(file: ReceivedFile): void {
  // (A file found not to be media is not written past its first bytes: its size says nothing.)
  const sniffed = file.sniffed
  if (sniffed.kind === 'empty') {
    throw appError('EMPTY_FILE')
  }
  if (sniffed.kind === 'other') {
    const details = { mime: sniffed.mime }
    throw sniffed.mime === null
      ? appError('NOT_MEDIA', { variant: 'unknownContent', details })
      : appError('NOT_MEDIA', { params: { mime: sniffed.mime }, details })
  }
}

/** Check the content, then into the pool under its real md5. */
export async function storeMedia(
  file: ReceivedFile,
  ext: string,
  deps: Pick<RouteDeps, 'pool' | 'now'>,
): Promise<FileRef> {
  assertMedia(file)
  await file.commit()
  const stored: FileRef = { hash: file.hash, ext, size: file.size }
  await deps.pool.recordCommitted(stored, deps.now(), await audioMsOf(file, deps.pool))
  return stored
}

/** How long an uploaded WAV plays, read from its header in the pool (estimates); else null. */
async function audioMsOf(file: ReceivedFile, pool: RouteDeps['pool']): Promise<number | null> {
  if (file.sniffed.kind !== 'media' || file.sniffed.ext !== '.wav') return null
  // An unreadable header costs the estimate its length, never the upload.
  return probeWavMs(pool.pathOf(file.hash)).catch(() => null)
}
