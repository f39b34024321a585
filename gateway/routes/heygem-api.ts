/**
 * The GPU server's own API (run_server.py), same paths and shapes, so the PC app only changes
 * `HEYGEM_SERVER_URL` to point here (docs/design.md §7). Health is in health.ts, upload_file in upload.ts.
 */
import { Router } from 'express'
import { ok, validate } from '../http-envelope.js'
import { queueInfo } from './health.js'
import { limitKey, type RouteDeps } from './deps.js'
import {
  assertInputs,
  submitData,
  submitMessage,
  submitOwner,
  submitWebhookUrl,
} from './submit-shared.js'
import { progressData } from '../progress-data.js'
import type { TaskRow } from '../task-store.js'
import { requestKey } from './task-api.js'
import { appError } from '../../lib/errors.js'
import {
  CheckFilesRequest,
  GpuSubmitRequest,
  HEYGEM_PATHS,
  TaskId,
  isTerminal,
  type QueueTask,
} from '../../protocol/index.js'

export function heygemApi(deps: RouteDeps): Router {
  const { views, actions, pool, auth } = deps
  const router = Router({ caseSensitive: true })

  // run_server lists every task it holds; the relay holds every owner's, so it lists only the
  // caller's own unfinished ones (by license key) and, without one, none: the counts are for all.
  router.get(HEYGEM_PATHS.queue, (req, res) => {
    const license = auth.licenseOf(req)
    const tasks: QueueTask[] =
      license === null
        ? []
        : views
            .history(license, 50, 0)
            .filter((row) => !isTerminal(row.state))
            .map((row) => ({
              task_id: row.id,
              status: views.serviceStatus(row),
              progress: row.progress,
              created_at: row.created_at / 1000,
            }))
    ok(res, { ...queueInfo(views.queue()), tasks })
  })

  router.post(HEYGEM_PATHS.checkFiles, async (req, res) => {
    const body = validate(CheckFilesRequest, req.body ?? {}, 'files')
    // Keyed by the hash as sent; a null prototype, so no hash string can reach Object.prototype.
    const data = Object.create(null) as Record<string, boolean>
    for (const file of body.files) {
      if (file.hash === '') continue
      const present = await pool.has(file.hash)
      if (present) pool.touch(file.hash, deps.now()) // the PC will submit it: keep it
      data[file.hash] = present
    }
    ok(res, data)
  })

  router.post(
    HEYGEM_PATHS.submit,
    deps.submitLimiter.middleware((req) => limitKey(req, auth), '提交'),
    async (req, res) => {
      const body = validate(GpuSubmitRequest, req.body ?? {}, 'body')
      const audio = { hash: body.audio_hash, ext: body.audio_ext }
      const video = { hash: body.video_hash, ext: body.video_ext }
      const webhookUrl = await submitWebhookUrl(deps, req, body.webhook_url)
      await assertInputs(pool, audio, video)
      const view = await actions.submit({
        // `license_key: ""` (a PC without a .license file): no owner, reachable by its id only.
        owner: submitOwner(body.license_key, auth.licenseOf(req)),
        source: 'heygem-api',
        audio,
        video,
        requestKey: requestKey(req, body.request_id),
        webhookUrl,
      })
      ok(res, submitData(view, deps), submitMessage(view))
    },
  )

  router.get(HEYGEM_PATHS.progress, (req, res) => {
    const row = compatTask(views, req.query.task_id)
    auth.assertVisible(req, row.owner)
    const data = progressData({ views, waitingStatus: deps.waitingStatus }, row)
    ok(res, data, data.message)
  })

  router.get(HEYGEM_PATHS.download, async (req, res, next) => {
    const row = compatTask(views, req.query.task_id)
    auth.assertVisible(req, row.owner)
    if (row.state !== 'done' || row.result_hash === null) {
      throw appError('TASK_NOT_DONE', { params: { status: views.serviceStatus(row) } })
    }
    if (!(await pool.has(row.result_hash))) {
      // run_server's 404 and words; the code says why (past retention, most likely).
      throw appError('RESULT_GONE')
    }
    // As run_server: shown in place (a browser or the H5 player plays it), byte ranges served
    // (express' sendFile answers `Range` with 206 and sends `Accept-Ranges: bytes`).
    const ext = row.result_ext ?? '.mp4'
    // The content type the result was stored with (docs/design.md §6), never sniffed.
    res.type(row.result_type ?? ext)
    res.set('X-Content-Type-Options', 'nosniff')
    res.set('Content-Disposition', `inline; filename=${row.id}${ext}`)
    res.sendFile(pool.pathOf(row.result_hash), { acceptRanges: true }, (err) => {
      if (!err) return
      // A range past the end (or backwards): 416 in the envelope, as the rest of the API.
      const unsatisfiable = (err as { status?: unknown }).status === 416 && !res.headersSent
      if (unsatisfiable) res.removeHeader('Content-Disposition')
      next(unsatisfiable ? appError('RANGE_NOT_SATISFIABLE') : err)
    })
  })

  return router
}

/** A task by the id a run_server client sends: any string; run_server's words when missing. */
export function compatTask(views: RouteDeps['views'], taskId: unknown): TaskRow {
  if (typeof taskId !== 'string' || taskId === '') {
    throw appError('VALIDATION_FAILED', { variant: 'taskIdMissing' })
  }
  const row = TaskId.safeParse(taskId).success ? views.find(taskId) : undefined
  if (!row) {
    throw appError('TASK_NOT_FOUND', { variant: 'unknownId', params: { id: taskId.slice(0, 64) } })
  }
  return row
}
