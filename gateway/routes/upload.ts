/**
 * `POST /api/heygem/upload_file` (multipart `file`, `hash`, `ext`): streamed to disk while the
 * md5 is computed; over the size limit it stops and the partial file is removed; a claimed hash
 * that does not match keeps the real md5 (the GPU server's behaviour).
 */
import { Router, type Request, type Response } from 'express'
import busboy from 'busboy'
import { extname } from 'node:path'
import type { Readable } from 'node:stream'
import { ok } from '../http-envelope.js'
import { assertAllowedExt, limitKey, type RouteDeps } from './deps.js'
import type { Staged } from '../file-pool.js'
import { AppError, isAppError } from '../../lib/errors.js'
import { Ext, HEYGEM_PATHS, Md5, type UploadFileData } from '../../protocol/index.js'

export function uploadApi(deps: RouteDeps): Router {
  const router = Router({ caseSensitive: true })
  router.post(
    HEYGEM_PATHS.uploadFile,
    deps.uploadLimiter.middleware((req) => limitKey(req, deps.auth), '上传'),
    async (req, res) => {
      const data = await receiveUpload(req, res, deps)
      ok(res, data, data.hash_matched ? '上传成功' : '文件内容与所给哈希不符，已按实际哈希保存')
    },
  )
  return router
}

/** A file name may carry an extension, never a path. */
function assertPlainName(name: string): void {
  if (name.includes('..') || name.includes('/') || name.includes('\\') || name.includes('\0')) {
    throw new AppError('BAD_FILENAME', 400, '文件名不能包含路径（.. / \\）')
  }
}

interface Written extends Staged {
  readonly filename: string
  readonly truncated: () => boolean
}

/** Past the size limit a client may send this much more before the connection is cut. */
const GRACE_BYTES = 1024 * 1024

function receiveUpload(req: Request, res: Response, deps: RouteDeps): Promise<UploadFileData> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy
    try {
      parser = busboy({
        headers: req.headers,
        // Keep the name as sent, so a name with a path is refused rather than quietly trimmed.
        preservePath: true,
        limits: { files: 1, fields: 10, fileSize: deps.uploadMaxBytes },
      })
    } catch (err) {
      reject(
        new AppError('BAD_UPLOAD', 400, '上传必须是 multipart/form-data，字段 file、hash、ext', {
          cause: err,
        }),
      )
      return
    }
    const fields: Record<string, string> = {}
    let fileStream: Readable | null = null
    let stored: Promise<Written> | null = null
    // A client that goes away mid-upload: stop writing, and the partial file is removed.
    req.once('close', () => {
      if (req.complete) return
      fileStream?.destroy(new Error('upload aborted by the client'))
      reject(new AppError('UPLOAD_ABORTED', 400, '上传中断，请重新上传'))
    })
    parser.on('field', (name, value) => {
      fields[name] = value
    })
    parser.on('file', (name, stream, info) => {
      if (name !== 'file' || stored) {
        stream.resume()
        return
      }
      fileStream = stream
      let truncated = false
      stream.on('limit', () => {
        truncated = true
      })
      stored = deps.pool.stage(stream).then((staged) => ({
        ...staged,
        filename: info.filename ?? '',
        truncated: () => truncated,
      }))
      stored.catch(() => undefined)
    })
    parser.on('error', (err) => {
      reject(new AppError('BAD_UPLOAD', 400, '上传内容无法解析', { cause: err }))
    })
    parser.on('close', () => {
      if (!stored) {
        reject(new AppError('VALIDATION_FAILED', 400, '请求参数有误：缺少文件字段 file'))
        return
      }
      stored.then(
        async (written) => {
          try {
            const data = accept(written, fields, deps)
            await written.commit()
            deps.pool.record({ hash: data.hash, ext: data.ext, size: data.size }, deps.now())
            resolve(data)
          } catch (err) {
            // Refused (or failed): the staged bytes never reach the pool.
            await written.discard()
            reject(
              isAppError(err)
                ? err
                : new AppError('UPLOAD_FAILED', 500, '文件保存失败，请重试', { cause: err }),
            )
          }
        },
        (err: unknown) => {
          reject(new AppError('UPLOAD_FAILED', 500, '文件保存失败，请重试', { cause: err }))
        },
      )
    })
    // busboy stops storing at the limit but would read the rest of the body, however long:
    // a little over the limit, answer 413 and close the connection instead.
    let received = 0
    req.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (received <= deps.uploadMaxBytes + GRACE_BYTES || req.readableEnded) return
      req.unpipe(parser)
      fileStream?.destroy(new Error('upload over the size limit'))
      res.set('Connection', 'close')
      res.once('finish', () => req.destroy())
      reject(
        new AppError(
          'FILE_TOO_LARGE',
          413,
          `文件超过大小上限（${String(deps.uploadMaxBytes)} 字节）`,
        ),
      )
    })
    req.pipe(parser)
  })
}

/** Check what came with the bytes: the upload's answer, or an AppError. */
function accept(written: Written, fields: Record<string, string>, deps: RouteDeps): UploadFileData {
  if (written.truncated()) {
    throw new AppError(
      'FILE_TOO_LARGE',
      413,
      `文件超过大小上限（${String(deps.uploadMaxBytes)} 字节）`,
    )
  }
  assertPlainName(written.filename)
  const claimed = fields.hash === undefined ? null : Md5.safeParse(fields.hash)
  if (claimed && !claimed.success) {
    throw new AppError('VALIDATION_FAILED', 400, '请求参数有误：hash（必须是 32 位十六进制 md5）')
  }
  if (fields.ext !== undefined) assertPlainName(fields.ext)
  const ext = Ext.safeParse(fields.ext ?? extname(written.filename))
  if (!ext.success) {
    throw new AppError('VALIDATION_FAILED', 400, '请求参数有误：ext（文件扩展名无效）')
  }
  assertAllowedExt(ext.data, deps.allowedExts)
  return {
    hash: written.hash,
    ext: ext.data,
    size: written.size,
    hash_matched: claimed === null || claimed.data === written.hash,
  }
}
