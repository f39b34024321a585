/** The seed's task API (DESIGN §7): submit and status, plus cancel and retry. */
import { Router, type Request } from 'express'
import { z } from 'zod'
import { ok, validate } from '../http-envelope.js'
import type { Submitted, TaskActions } from '../task-actions.js'
import type { TaskService, TaskView } from '../task-service.js'
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

export function taskApi(views: TaskService, actions: TaskActions): Router {
  const router = Router()

  router.post(TASK_PATHS.submit, async (req, res) => {
    const body = validate(TaskSubmitRequest, req.body, 'body')
    const view = await actions.submit({
      owner: body.license_key,
      source: 'task-api',
      audio: { hash: body.audio_hash, ext: body.audio_ext },
      video: { hash: body.video_hash, ext: body.video_ext },
      requestKey: requestKey(req, body.request_id),
    })
    const data: TaskSubmitData = {
      task_id: view.row.id,
      status: submitStatus(view),
      msg: view.message,
      queue_position: view.position,
      eta_seconds: view.etaSeconds,
      result_url: view.row.state === 'done' ? resultUrl(view.row.id) : null,
    }
    ok(res, data, view.message)
  })

  router.get(TASK_PATHS.status, (req, res) => {
    const query = validate(z.object({ task_id: TaskId }), req.query, 'task_id')
    const view = views.view(views.get(query.task_id))
    ok(res, statusData(view), view.message)
  })

  router.post(TASK_PATHS.cancel, (req, res) => {
    const body = validate(TaskIdRequest, req.body, 'body')
    const view = actions.cancel(body.task_id, 'owner')
    ok(res, statusData(view), '任务已取消')
  })

  router.post(TASK_PATHS.retry, (req, res) => {
    const body = validate(TaskIdRequest, req.body, 'body')
    const view = actions.retry(body.task_id)
    ok(res, statusData(view), '任务已重新排队')
  })

  return router
}

/** `Idempotency-Key` header, else the body's `request_id`. */
export function requestKey(req: Request, bodyKey: string | undefined): string | null {
  const header = req.get(IDEMPOTENCY_HEADER)
  if (header !== undefined) return validate(RequestKey, header, 'Idempotency-Key')
  return bodyKey ?? null
}

function submitStatus(view: Submitted): TaskSubmitData['status'] {
  if (view.row.state === 'done') return 'done'
  if (view.row.state === 'queued' && view.gpusOnline === 0) return 'queued'
  return 'submitted'
}

export function statusData(view: TaskView): TaskStatusData {
  return {
    task_id: view.row.id,
    status: view.row.state,
    progress: view.row.progress,
    result_url: view.row.state === 'done' ? resultUrl(view.row.id) : null,
    error_msg: failureText(view.row.state, view.row.error_msg, view.message),
    queue_position: view.position,
    eta_seconds: view.etaSeconds,
    msg: view.message,
  }
}

export function resultUrl(taskId: string): string {
  return `/api/heygem/download?task_id=${taskId}`
}

/** Why a task ended without a result (null while it may still succeed). */
export function failureText(
  state: string,
  errorMsg: string | null,
  message: string,
): string | null {
  if (state === 'error') return errorMsg ?? message
  if (state === 'cancelled' || state === 'expired') return message
  return null
}
