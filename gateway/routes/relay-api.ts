/**
 * What bridges fetch and store over HTTP (docs/design.md §6): input files out of the pool, results in.
 * A GPU may fetch only inputs of tasks assigned to it, and store results only for its own
 * running task; both directions are streamed and hash-verified by the pool.
 */
import { Router } from 'express'
import { z } from 'zod'
import { ok, validate } from '../http-envelope.js'
import type { RouteDeps } from './deps.js'
import { AppError } from '../../lib/errors.js'
import { Attempt, Ext, Md5, TaskId, type FileRef } from '../../protocol/index.js'

export function relayApi(deps: RouteDeps): Router {
  const { pool, store, log, auth } = deps
  const router = Router({ caseSensitive: true })

  router.get('/api/relay/files/:hash', async (req, res, next) => {
    const { hash } = validate(z.object({ hash: Md5 }), req.params, 'hash')
    const who = auth.principal(req)
    const allowed = who.kind !== 'gpu' || store.isInputFor(hash, who.gpuId)
    if (!allowed || !(await pool.has(hash))) {
      throw new AppError('FILE_NOT_FOUND', 404, `文件 ${hash} 不存在`)
    }
    res.type('application/octet-stream')
    res.sendFile(pool.pathOf(hash), (err) => {
      if (err) next(err)
    })
  })

  router.post('/api/relay/tasks/:taskId/result', async (req, res) => {
    const { taskId } = validate(z.object({ taskId: TaskId }), req.params, 'taskId')
    const query = validate(
      z.object({ attempt: z.coerce.number().pipe(Attempt), ext: Ext.default('.mp4') }),
      req.query,
      'query',
    )
    const task = store.get(taskId)
    const who = auth.principal(req)
    if (!task || (who.kind === 'gpu' && task.gpu_id !== who.gpuId)) {
      req.resume()
      throw new AppError('TASK_NOT_FOUND', 404, '任务不存在')
    }
    if (task.state !== 'processing' || task.attempt !== query.attempt) {
      req.resume()
      throw new AppError(
        'TASK_NOT_CURRENT',
        409,
        `任务当前状态为 ${task.state}（第 ${String(task.attempt)} 次尝试），不接收此结果`,
      )
    }
    // A full disk: 507 at once, before a byte of the result is read (the bridge retries later);
    // a write that fails on the way is a 507 too, its staged bytes removed (file-pool.ts).
    pool.assertRoom()
    const data: FileRef = await pool.store(req, query.ext, deps.now())
    log.info({ taskId, attempt: query.attempt, hash: data.hash, bytes: data.size }, 'result stored')
    ok(res, data)
  })

  return router
}
