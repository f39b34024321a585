/** The seed's task API (docs/design.md §7): submit and status, plus cancel, retry and history. */
import { Router, type Request } from 'express'
import { z } from 'zod'
import { ok, validate } from '../http-envelope.js'
import { limitKey, type RouteDeps } from './deps.js'
import { assertInputs, submitOwner, submitStatus, submitWebhookUrl } from './submit-shared.js'
import { failureText, resultUrl, type TaskView } from '../task-service.js'
import { appError } from '../../lib/errors.js'
import {
  IDEMPOTENCY_HEADER,
  RequestKey,
  TASK_PATHS,
  TaskId,
  TaskIdRequest,
  TaskSubmitRequest,
  type TaskStatusData,
  type TaskSubmitData,
} from '../../protocol/index.js'

const HistoryQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    offset: z.coerce.number().int().min(0).default(0),
  })
  .loose()

export function taskApi(deps: RouteDeps): Router {
  const { views, actions, auth } = deps
  const router = Router({ caseSensitive: true })

  router.post(
    TASK_PATHS.submit,
    deps.submitLimiter.middleware((req) => limitKey(req, auth), '提交'),
    async (req, res) => {
      const body = validate(TaskSubmitRequest, req.body ?? {}, 'body')
      const audio = { hash: body.audio_hash, ext: body.audio_ext }
      const video = { hash: body.video_hash, ext: body.video_ext }
      const webhookUrl = await submitWebhookUrl(deps, req, body.webhook_url)
      await assertInputs(deps.pool, audio, video)
      const view = await actions.submit({
        // `license_key: ""`: a task without an owner, reachable by its id only.
        owner: submitOwner(body.license_key, auth.licenseOf(req)),
        source: 'task-api',
        audio,
        video,
        requestKey: requestKey(req, body.request_id),
        webhookUrl,
      })
      const data: TaskSubmitData = {
        task_id: view.row.id,
        status: submitStatus(view),
        msg: view.message,
        queue_position: view.position,
        eta_seconds: view.etaSeconds,
        result_url: resultUrl(view.row),
      }
      ok(res, data, view.message)
    },
  )

  router.get(TASK_PATHS.status, (req, res) => {
    const query = validate(z.object({ task_id: TaskId }).loose(), req.query, 'task_id')
    const row = views.get(query.task_id)
    auth.assertVisible(req, row.owner)
    const view = views.view(row)
    ok(res, statusData(view), view.message)
  })

  router.post(TASK_PATHS.cancel, (req, res) => {
    const body = validate(TaskIdRequest, req.body, 'body')
    auth.assertVisible(req, views.get(body.task_id).owner)
    ok(res, statusData(actions.cancel(body.task_id, 'owner')), '任务已取消')
  })

  router.post(TASK_PATHS.retry, (req, res) => {
    const body = validate(TaskIdRequest, req.body, 'body')
    auth.assertVisible(req, views.get(body.task_id).owner)
    ok(res, statusData(actions.retry(body.task_id)), '任务已重新排队')
  })

  router.get(TASK_PATHS.history, (req, res) => {
    const query = validate(HistoryQuery, req.query, 'query')
    const admin = auth.principal(req).kind === 'admin'
    const license = auth.licenseOf(req)
    if (license === null && !admin) {
      throw appError('LICENSE_REQUIRED', { variant: 'history' })
    }
    const rows = views.history(license, query.limit, query.offset)
    ok(res, {
      tasks: rows.map((row) => statusData(views.view(row))),
      limit: query.limit,
      offset: query.offset,
    })
  })

  return router
}

/** `Idempotency-Key` header, else the body's `request_id`. */
export function requestKey(req: Request, bodyKey: string | undefined): string | null {
  const header = req.get(IDEMPOTENCY_HEADER)
  if (header !== undefined) return validate(RequestKey, header, 'Idempotency-Key')
  return bodyKey ?? null
}

export function statusData(view: TaskView): TaskStatusData {
  return {
    task_id: view.row.id,
    status: view.row.state,
    progress: view.row.progress,
    result_url: resultUrl(view.row),
    error_msg: failureText(view),
    queue_position: view.position,
    eta_seconds: view.etaSeconds,
    msg: view.message,
  }
}
