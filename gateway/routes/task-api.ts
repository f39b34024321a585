/** The seed's task API: submit and status (DESIGN §7). */
import { Router } from 'express'
import { ok, validate } from '../http-envelope.js'
import type { TaskService } from '../task-service.js'
import {
  TASK_PATHS,
  TaskId,
  TaskSubmitRequest,
  type TaskStatusData,
  type TaskSubmitData,
} from '../../protocol/index.js'
import { z } from 'zod'

export function taskApi(tasks: TaskService): Router {
  const router = Router()

  router.post(TASK_PATHS.submit, async (req, res) => {
    const body = validate(TaskSubmitRequest, req.body, 'body')
    const view = await tasks.submit({
      owner: body.license_key,
      source: 'task-api',
      audio: { hash: body.audio_hash, ext: body.audio_ext },
      video: { hash: body.video_hash, ext: body.video_ext },
    })
    const data: TaskSubmitData = {
      task_id: view.row.id,
      status: view.gpusOnline > 0 ? 'submitted' : 'queued',
      msg: view.message,
      queue_position: view.position,
      eta_seconds: view.etaSeconds,
    }
    ok(res, data, view.message)
  })

  router.get(TASK_PATHS.status, (req, res) => {
    const query = validate(z.object({ task_id: TaskId }), req.query, 'task_id')
    const view = tasks.view(tasks.get(query.task_id))
    const data: TaskStatusData = {
      task_id: view.row.id,
      status: view.row.state,
      progress: view.row.progress,
      result_url: view.row.state === 'done' ? resultUrl(view.row.id) : null,
      error_msg: failureText(view.row.state, view.row.error_msg, view.message),
      queue_position: view.position,
      eta_seconds: view.etaSeconds,
      msg: view.message,
    }
    ok(res, data, view.message)
  })

  return router
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
