/**
 * What bridges fetch and store over HTTP (docs/design.md §6): input files out of the pool, results in.
 * A GPU may fetch only inputs of tasks it may claim or runs, and store results only for its own
 * running task: one result per attempt, at most `resultMaxBytes`; both directions are streamed
 * and hash-verified by the pool.
 */
import type { Request, Response } from 'express'
import { Router } from 'express'
import { z } from 'zod'
import { ok, validate } from '../http-envelope.js'
import type { RouteDeps } from './deps.js'
import { closeAfterReply as closeWithLinger } from '../lingering-close.js'
import { ResultLimit, resultContentType, resultTooLarge } from '../result-intake.js'
import type { StoredResult } from '../task-store.js'
import { storedResultOf } from '../task-store.js'
import { AppError } from '../../lib/errors.js'
import { Attempt, Ext, Md5, TaskId, type FileRef } from '../../protocol/index.js'

/** While a result streams in, its hand-over is marked at most this often. */
const HAND_OVER_MARK_MS = 1_000

export function relayApi(deps: RouteDeps): Router {
  const { pool, store, log, auth } = deps
  const maxBytes = deps.resultMaxBytes ?? deps.uploadMaxBytes
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
    const gpuId = who.kind === 'gpu' ? who.gpuId : (task?.gpu_id ?? null)
    // Refusals before the body is read answer at once and close the connection: a result can be
    // gigabytes, and nothing of it is wanted.
    if (!task || gpuId === null || task.gpu_id !== gpuId) {
      closeAfterReply(req, res)
      throw new AppError('TASK_NOT_FOUND', 404, '任务不存在')
    }
    if (task.state !== 'processing' || task.attempt !== query.attempt) {
      closeAfterReply(req, res)
      throw notCurrent(task.state, task.attempt)
    }
    // From here on a hand-over of the current attempt: its clocks hold (hand-overs.ts), for a
    // refused try too (the bridge tries again), and while its bytes keep coming.
    const handOvers = deps.handOvers
    handOvers?.touch(taskId, query.attempt)
    const earlier = storedResultOf(task)
    if (earlier) {
      closeAfterReply(req, res)
      alreadyStored(res, earlier)
      return
    }
    // A full disk: 507 at once, before a byte of the result is read (the bridge retries later);
    // a write that fails on the way is a 507 too, its staged bytes removed (file-pool.ts).
    try {
      pool.assertRoom()
    } catch (err) {
      closeAfterReply(req, res)
      throw err
    }
    const declared = Number(req.headers['content-length'] ?? 'NaN')
    if (Number.isFinite(declared) && declared > maxBytes) {
      closeAfterReply(req, res)
      throw resultTooLarge(maxBytes)
    }

    const limit = new ResultLimit(maxBytes)
    req.once('error', (err) => limit.destroy(err))
    req.once('close', () => {
      if (!req.readableEnded) {
        limit.destroy(new AppError('UPLOAD_ABORTED', 400, '结果上传中断，请重新上传'))
      }
    })
    req.pipe(limit)
    if (handOvers) {
      // Read alongside the pipe (already flowing): nothing is taken from it.
      let marked = performance.now()
      req.on('data', () => {
        if (performance.now() - marked < HAND_OVER_MARK_MS) return
        marked = performance.now()
        handOvers.touch(taskId, query.attempt)
      })
    }
    let data: FileRef
    try {
      data = await pool.store(limit, query.ext, deps.now())
    } catch (err) {
      // Over the limit (or failed): the rest of the body is not read.
      closeAfterReply(req, res)
      throw err
    }
    const type = resultContentType(data.ext)
    const recorded = deps.lifecycle.recordResult({
      id: taskId,
      gpuId,
      attempt: query.attempt,
      result: { ...data, type },
    })
    if (recorded.kind === 'already-stored') {
      // Another hand-over of this attempt got there first (a retry racing the original).
      alreadyStored(res, recorded.result)
      return
    }
    if (recorded.kind === 'not-current') {
      const current = store.get(taskId)
      throw notCurrent(current?.state ?? 'unknown', current?.attempt ?? 0)
    }
    log.info(
      { taskId, gpuId, attempt: query.attempt, hash: data.hash, bytes: data.size, type },
      'result stored',
    )
    ok(res, data)
  })

  return router
}

function notCurrent(state: string, attempt: number): AppError {
  return new AppError(
    'TASK_NOT_CURRENT',
    409,
    `任务当前状态为 ${state}（第 ${String(attempt)} 次尝试），不接收此结果`,
  )
}

/** 409 naming the result already stored, so a bridge that lost the first reply learns it. */
function alreadyStored(res: Response, stored: StoredResult): void {
  res.status(409).json({
    code: 409,
    msg: '该任务本次尝试的结果已经收到，不再接收',
    data: { error: 'RESULT_ALREADY_STORED', hash: stored.hash, ext: stored.ext, size: stored.size },
  })
}

/** The reply is the last thing on this connection: the unread body is dropped with it. */
function closeAfterReply(req: Request, res: Response): void {
  req.unpipe()
  closeWithLinger(req, res)
}
