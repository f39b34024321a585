/**
 * The fake run_server's HTTP API: the real Flask service's paths, envelope and messages
 * (DESIGN §7, §8). Errors carry `code` = HTTP status and a Chinese `msg`; bad input never crashes it.
 */
import express, { type ErrorRequestHandler, type Express, type Request } from 'express'
import type { Logger } from 'pino'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { z } from 'zod'
import { AppError, isAppError } from '../../lib/errors.js'
import {
  CheckFilesRequest,
  GpuSubmitRequest,
  HEYGEM_PATHS,
  type ProgressData,
  type UploadFileData,
} from '../../protocol/index.js'
import type { FakeJobQueue } from './run-server-jobs.js'
import { describeJob } from './run-server-progress.js'
import { receiveUpload, type FakeFilePool } from './run-server-files.js'
import { fakeResultChunks } from './result-bytes.js'

export interface FakeRunServerAppDeps {
  readonly pool: FakeFilePool
  readonly jobs: FakeJobQueue
  readonly durationMs: number
  readonly resultSize: number
  readonly log: Logger
  readonly onUpload: (upload: UploadFileData) => void
  readonly onSubmit: (taskId: string, body: GpuSubmitRequest) => void
  /** A client asked about a job it knows: its progress, or its result. */
  readonly onAsk?: (taskId: string, what: 'progress' | 'download') => void
}

export function downloadUrl(taskId: string): string {
  return `${HEYGEM_PATHS.download}?task_id=${encodeURIComponent(taskId)}`
}

function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const result = schema.safeParse(body)
  if (result.success) return result.data
  const fields = result.error.issues.map((issue) => issue.path.join('.') || 'body').join(', ')
  throw new AppError('VALIDATION_FAILED', 400, `参数错误：${fields}`)
}

function taskIdOf(req: Request): string {
  const id = req.query.task_id
  if (typeof id !== 'string' || id === '') {
    throw new AppError('VALIDATION_FAILED', 400, '参数错误：缺少 task_id')
  }
  return id
}

function taskNotFound(taskId: string): AppError {
  return new AppError('TASK_NOT_FOUND', 404, `任务不存在: ${taskId}`)
}

export function createFakeRunServerApp(deps: FakeRunServerAppDeps): Express {
  const { pool, jobs } = deps
  const app = express()
  app.disable('x-powered-by')
  app.set('query parser', 'simple')
  app.use(express.json({ limit: '1mb' }))

  app.get(HEYGEM_PATHS.health, (_req, res) => {
    const { queued, processing } = jobs.counts()
    res.json({ code: 0, msg: 'ok', initialized: true, queue: { queued, processing } })
  })

  app.get(HEYGEM_PATHS.queue, (_req, res) => {
    res.json({ code: 0, msg: 'ok', data: jobs.counts() })
  })

  app.post(HEYGEM_PATHS.checkFiles, async (req, res) => {
    const { files } = parseBody(CheckFilesRequest, req.body)
    const data: Record<string, boolean> = {}
    for (const file of files) data[file.hash] = await pool.has(file.hash, file.ext)
    res.json({ code: 0, msg: 'ok', data })
  })

  app.post(HEYGEM_PATHS.uploadFile, async (req, res) => {
    const data = await receiveUpload(req, pool)
    deps.onUpload(data)
    res.json({ code: 0, msg: '上传成功', data })
  })

  app.post(HEYGEM_PATHS.submit, async (req, res) => {
    const body = parseBody(GpuSubmitRequest, req.body)
    if (!(await pool.has(body.audio_hash, body.audio_ext))) {
      throw new AppError('FILE_NOT_FOUND', 404, `音频文件不存在: ${body.audio_hash}`)
    }
    if (!(await pool.has(body.video_hash, body.video_ext))) {
      throw new AppError('FILE_NOT_FOUND', 404, `视频文件不存在: ${body.video_hash}`)
    }
    const job = jobs.submit(body.audio_hash, body.video_hash)
    deps.onSubmit(job.taskId, body)
    const { queued, processing } = jobs.counts()
    res.json({
      code: 0,
      msg: '任务已提交',
      data: { task_id: job.taskId, queue: { queued, processing } },
    })
  })

  app.get(HEYGEM_PATHS.progress, (req, res) => {
    const taskId = taskIdOf(req)
    const job = jobs.describe(taskId)
    if (!job) throw taskNotFound(taskId)
    deps.onAsk?.(taskId, 'progress')
    const data: ProgressData = describeJob(job, deps.durationMs, downloadUrl)
    res.json({ code: 0, msg: 'ok', data })
  })

  app.get(HEYGEM_PATHS.download, async (req, res) => {
    const taskId = taskIdOf(req)
    const job = jobs.describe(taskId)
    if (!job) throw taskNotFound(taskId)
    if (describeJob(job, deps.durationMs, downloadUrl).status !== 'done') {
      throw new AppError('TASK_NOT_DONE', 400, '任务尚未完成')
    }
    deps.onAsk?.(taskId, 'download')
    res.status(200)
    res.type('video/mp4')
    res.attachment(`${taskId}.mp4`)
    res.setHeader('content-length', String(deps.resultSize))
    const source = Readable.from(fakeResultChunks(job.audioHash, job.videoHash, deps.resultSize))
    // A client that goes away mid-download is not an error of the service.
    await pipeline(source, res).catch(() => undefined)
  })

  app.use((req, res) => {
    res.status(404).json({ code: 404, msg: `接口不存在: ${req.method} ${req.path}`, data: null })
  })
  app.use(errorHandler(deps.log))
  return app
}

function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.destroy()
      return
    }
    const [status, msg] = describeError(err)
    if (status >= 500) log.error({ err, method: req.method, path: req.path }, 'request failed')
    res.status(status).json({ code: status, msg, data: null })
  }
}

function describeError(err: unknown): [number, string] {
  if (isAppError(err)) return [err.status, err.message]
  // body-parser errors carry `status` and `type`.
  if (typeof err === 'object' && err !== null && 'status' in err && 'type' in err) {
    const status = err.status
    if (status === 413) return [413, '请求体过大']
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return [status, '请求体不是有效的 JSON']
    }
  }
  return [500, '服务器内部错误']
}
