/**
 * The GPU server's own API (run_server.py), same paths and shapes, so the PC app only changes
 * `HEYGEM_SERVER_URL` to point here (DESIGN §7). Health is in health.ts, upload_file in upload.ts.
 */
import { Router } from 'express'
import { z } from 'zod'
import { ok, validate } from '../http-envelope.js'
import { queueInfo } from './health.js'
import { assertAllowedExt, limitKey, type RouteDeps } from './deps.js'
import { failureText, requestKey, resultUrl } from './task-api.js'
import { AppError } from '../../lib/errors.js'
import {
  CheckFilesRequest,
  GpuSubmitRequest,
  HEYGEM_PATHS,
  TaskId,
  type ProgressData,
} from '../../protocol/index.js'

export function heygemApi(deps: RouteDeps): Router {
  const { views, actions, pool, auth } = deps
  const router = Router({ caseSensitive: true })

  router.get(HEYGEM_PATHS.queue, (_req, res) => {
    ok(res, queueInfo(views.queue()))
  })

  router.post(HEYGEM_PATHS.checkFiles, async (req, res) => {
    const body = validate(CheckFilesRequest, req.body, 'files')
    for (const file of body.files) assertAllowedExt(file.ext, deps.allowedExts)
    const data: Record<string, boolean> = {}
    for (const file of body.files) {
      const present = await pool.has(file.hash)
      if (present) pool.touch(file.hash, deps.now()) // the PC will submit it: keep it
      data[file.hash] = present
    }
    ok(res, data)
  })

  router.post(
    HEYGEM_PATHS.submit,
    deps.submitLimiter.middleware((req) => limitKey(req, auth, bodyLicense(req.body)), '提交'),
    async (req, res) => {
      const body = validate(GpuSubmitRequest, req.body, 'body')
      assertAllowedExt(body.audio_ext, deps.allowedExts)
      assertAllowedExt(body.video_ext, deps.allowedExts)
      const view = await actions.submit({
        owner: body.license_key ?? auth.licenseOf(req),
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
          queue: { ...queueInfo(views.queue()), position: view.position },
        },
        '任务已提交',
      )
    },
  )

  router.get(HEYGEM_PATHS.progress, (req, res) => {
    const query = validate(z.object({ task_id: TaskId }).loose(), req.query, 'task_id')
    const row = views.get(query.task_id)
    auth.assertVisible(req, row.owner)
    const view = views.view(row)
    const data: ProgressData = {
      task_id: row.id,
      status: views.serviceStatus(row),
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
    const query = validate(z.object({ task_id: TaskId }).loose(), req.query, 'task_id')
    const row = views.get(query.task_id)
    auth.assertVisible(req, row.owner)
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

function bodyLicense(body: unknown): unknown {
  return typeof body === 'object' && body !== null && 'license_key' in body
    ? body.license_key
    : undefined
}
