/**
 * The dashboard's JSON API under `/api/relay/admin/` (admin token only): GPUs, queue, history,
 * one task's detail, and cancel / retry through the owners' own actions (task-actions.ts). Every
 * answer is the usual envelope `{code, msg, data}`; a caller that is not an admin is refused
 * before anything is read, whatever path under the prefix it asks for.
 */
import { Router, type RequestHandler } from 'express'
import { z } from 'zod'
import { ok, validate } from '../http-envelope.js'
import type { RouteDeps } from './deps.js'
import type { HttpAuth } from '../http-auth.js'
import { AdminViews, type AdminSources } from '../admin-views.js'
import { appError } from '../../lib/errors.js'
import { TaskId, TaskState } from '../../protocol/index.js'

export const ADMIN_API_PREFIX = '/api/relay/admin'

const Ms = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const HistoryQuery = z
  .object({
    owner: z.string().min(1).max(200).optional(),
    state: TaskState.optional(),
    from: Ms.optional(),
    to: Ms.optional(),
    before: Ms.optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .loose()
const TaskParams = z.object({ taskId: TaskId })

/**
 * Before the guard of /api/relay/ (which lets GPUs in): under the prefix, in any letter case,
 * only an admin goes on; nobody else's body is read.
 */
export function adminGate(auth: HttpAuth): RequestHandler {
  return (req, _res, next) => {
    if (!req.path.toLowerCase().startsWith(`${ADMIN_API_PREFIX}/`)) {
      next()
      return
    }
    const who = auth.principal(req).kind
    if (who === 'admin') next()
    else if (who === 'anonymous') next(appError('UNAUTHORIZED'))
    else next(appError('FORBIDDEN', { variant: 'adminOnly' }))
  }
}

export function adminApi(deps: RouteDeps, sources: AdminSources): Router {
  const { auth, actions } = deps
  const views = new AdminViews({
    ...sources,
    views: deps.views,
    outbox: deps.outbox,
    now: deps.now,
  })
  const router = Router({ caseSensitive: true })
  // Again here, so the routes are never open whatever is mounted before them.
  router.use(adminGate(auth))

  router.get(`${ADMIN_API_PREFIX}/gpus`, (_req, res) => {
    ok(res, views.gpus())
  })

  router.get(`${ADMIN_API_PREFIX}/queue`, (_req, res) => {
    ok(res, views.queue())
  })

  router.get(`${ADMIN_API_PREFIX}/tasks`, (req, res) => {
    const q = validate(HistoryQuery, req.query, 'query')
    ok(
      res,
      views.history({
        limit: q.limit,
        ...(q.owner === undefined ? {} : { owner: q.owner }),
        ...(q.state === undefined ? {} : { state: q.state }),
        ...(q.from === undefined ? {} : { from: q.from }),
        ...(q.to === undefined ? {} : { to: q.to }),
        ...(q.before === undefined ? {} : { before: q.before }),
      }),
    )
  })

  router.get(`${ADMIN_API_PREFIX}/tasks/:taskId`, (req, res) => {
    const { taskId } = validate(TaskParams, req.params, 'taskId')
    const detail = views.detail(taskId)
    if (!detail) throw appError('TASK_NOT_FOUND')
    ok(res, detail)
  })

  router.post(`${ADMIN_API_PREFIX}/tasks/:taskId/cancel`, (req, res) => {
    const { taskId } = validate(TaskParams, req.params, 'taskId')
    actions.cancel(taskId, 'admin')
    ok(res, views.detail(taskId), '任务已取消')
  })

  router.post(`${ADMIN_API_PREFIX}/tasks/:taskId/retry`, (req, res) => {
    const { taskId } = validate(TaskParams, req.params, 'taskId')
    actions.retry(taskId)
    ok(res, views.detail(taskId), '任务已重新排队')
  })

  return router
}
