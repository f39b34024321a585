/**
 * The GPU server's own API (run_server.py), same paths and shapes, so the PC app only changes
 * `HEYGEM_SERVER_URL` to point here (DESIGN §7).
 */
import { Router, type Request } from 'express'
import busboy from 'busboy'
import { extname } from 'node:path'
import type { Readable } from 'node:stream'
import { z } from 'zod'
import { ok, validate } from '../http-envelope.js'
import type { FilePool } from '../file-pool.js'
import type { TaskService } from '../task-service.js'
import { failureText, requestKey, resultUrl } from './task-api.js'
import type { TaskActions } from '../task-actions.js'
import { AppError } from '../../lib/errors.js'
import {
  CheckFilesRequest,
  Ext,
  GpuSubmitRequest,
  HEYGEM_PATHS,
  Md5,
  TaskId,
  type ProgressData,
  type UploadFileData,
} from '../../protocol/index.js'

export interface HeygemApiDeps {
  readonly tasks: TaskService
  readonly actions: TaskActions
  readonly pool: FilePool
  readonly now: () => number
  readonly uploadMaxBytes: number
}

export function heygemApi(deps: HeygemApiDeps): Router {
  const { tasks, pool } = deps
  const router = Router()

  router.get(HEYGEM_PATHS.health, (_req, res) => {
    const q = tasks.queue()
    // Always answers while the gateway runs: the relay is up even when the GPU is not.
    res.json({
      code: 0,
      msg: 'ok',
      initialized: true,
      queue: queueInfo(q),
      gpu: { online: q.gpusOnline > 0, gpus_online: q.gpusOnline, gpus: tasks.gpus() },
      relay: true,
    })
  })

  router.get(HEYGEM_PATHS.queue, (_req, res) => {
    ok(res, queueInfo(tasks.queue()))
  })

  router.post(HEYGEM_PATHS.checkFiles, async (req, res) => {
    const body = validate(CheckFilesRequest, req.body, 'files')
    const data: Record<string, boolean> = {}
    for (const file of body.files) {
      const present = await pool.has(file.hash)
      if (present) pool.touch(file.hash, deps.now()) // the PC will submit it: keep it
      data[file.hash] = present
    }
    ok(res, data)
  })

  router.post(HEYGEM_PATHS.uploadFile, async (req, res) => {
    const data = await receiveUpload(req, deps)
    ok(res, data, data.hash_matched ? '上传成功' : '文件内容与所给哈希不符，已按实际哈希保存')
  })

  router.post(HEYGEM_PATHS.submit, async (req, res) => {
    const body = validate(GpuSubmitRequest, req.body, 'body')
    const view = await deps.actions.submit({
      owner: body.license_key ?? null,
      source: 'heygem-api',
      audio: { hash: body.audio_hash, ext: body.audio_ext },
      video: { hash: body.video_hash, ext: body.video_ext },
      requestKey: requestKey(req, body.request_id),
    })
    ok(
      res,
      {
        task_id: view.row.id,
        status: view.row.state === 'done' ? 'done' : view.gpusOnline > 0 ? 'submitted' : 'queued',
        message: view.message,
        queue: { ...queueInfo(tasks.queue()), position: view.position },
      },
      '任务已提交',
    )
  })

  router.get(HEYGEM_PATHS.progress, (req, res) => {
    const query = validate(z.object({ task_id: TaskId }), req.query, 'task_id')
    const view = tasks.view(tasks.get(query.task_id))
    const row = view.row
    const data: ProgressData = {
      task_id: row.id,
      status: tasks.serviceStatus(row),
      progress: row.progress,
      message: view.message,
      queue_position: view.position,
      eta_seconds: view.etaSeconds,
      result_url: row.state === 'done' ? resultUrl(row.id) : null,
      error_msg: failureText(row.state, row.error_msg, view.message),
    }
    ok(res, data, view.message)
  })

  router.get(HEYGEM_PATHS.download, async (req, res, next) => {
    const query = validate(z.object({ task_id: TaskId }), req.query, 'task_id')
    const row = tasks.get(query.task_id)
    if (row.state !== 'done' || row.result_hash === null) {
      throw new AppError(
        'TASK_NOT_DONE',
        400,
        `任务尚未完成（当前状态：${row.state}），请完成后再下载`,
      )
    }
    if (!(await pool.has(row.result_hash))) {
      throw new AppError(
        'RESULT_GONE',
        410,
        '结果视频已不在服务器上（可能已过保留期），请重新提交任务',
      )
    }
    const ext = row.result_ext ?? '.mp4'
    res.type(ext)
    res.attachment(`${row.id}${ext}`)
    res.sendFile(pool.pathOf(row.result_hash), (err) => {
      if (err) next(err)
    })
  })

  return router
}

function queueInfo(q: ReturnType<TaskService['queue']>): {
  queued: number
  processing: number
  gpus_online: number
  eta_seconds: number
} {
  return {
    queued: q.queued,
    processing: q.processing,
    gpus_online: q.gpusOnline,
    eta_seconds: q.etaSeconds,
  }
}

/** multipart `file`, `hash`, `ext`: streamed to disk, md5 verified; a mismatch keeps the real md5. */
function receiveUpload(req: Request, deps: HeygemApiDeps): Promise<UploadFileData> {
  return new Promise((resolve, reject) => {
    let parser: busboy.Busboy
    try {
      parser = busboy({
        headers: req.headers,
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
    // A client that goes away mid-upload: stop writing, and the partial file is removed.
    req.once('close', () => {
      if (req.complete) return
      fileStream?.destroy(new Error('upload aborted by the client'))
      reject(new AppError('UPLOAD_ABORTED', 400, '上传中断，请重新上传'))
    })
    let stored: Promise<{
      hash: string
      size: number
      filenameExt: string
      truncated: () => boolean
    }> | null = null
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
      stored = deps.pool.write(stream).then((written) => ({
        ...written,
        filenameExt: extname(info.filename ?? ''),
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
        (written) => {
          if (written.truncated()) {
            deps.pool.discardUnrecorded(written.hash).catch(() => undefined)
            reject(
              new AppError(
                'FILE_TOO_LARGE',
                413,
                `文件超过大小上限（${deps.uploadMaxBytes} 字节）`,
              ),
            )
            return
          }
          const claimed = fields.hash === undefined ? null : Md5.safeParse(fields.hash)
          if (claimed && !claimed.success) {
            reject(
              new AppError(
                'VALIDATION_FAILED',
                400,
                '请求参数有误：hash（必须是 32 位十六进制 md5）',
              ),
            )
            return
          }
          const ext = Ext.safeParse(fields.ext ?? written.filenameExt)
          if (!ext.success) {
            reject(new AppError('VALIDATION_FAILED', 400, '请求参数有误：ext（文件扩展名无效）'))
            return
          }
          deps.pool.record({ hash: written.hash, ext: ext.data, size: written.size }, deps.now())
          resolve({
            hash: written.hash,
            ext: ext.data,
            size: written.size,
            hash_matched: claimed === null || claimed.data === written.hash,
          })
        },
        (err: unknown) => {
          reject(new AppError('UPLOAD_FAILED', 500, '文件保存失败，请重试', { cause: err }))
        },
      )
    })
    req.pipe(parser)
  })
}
