/** The envelope `{code, msg, data}` (docs/design.md §7), input validation, and the one error middleware. */
import type { ErrorRequestHandler, RequestHandler, Response } from 'express'
import type { Logger } from 'pino'
import { z } from 'zod'
import { diskFull, isDiskFullError } from './disk-space.js'
import { AppError, isAppError } from '../lib/errors.js'

export function ok(res: Response, data: unknown, msg = 'ok'): void {
  res.json({ code: 0, msg, data })
}

/** An error envelope: `code` is the HTTP status (never 0); `data.error` is the stable error code. */
export function sendError(res: Response, status: number, code: string, msg: string): void {
  res.status(status).json({ code: status, msg, data: { error: code } })
}

/** Parse `value` with `schema` or throw a 400 naming each bad field. */
export function validate<S extends z.ZodType>(
  schema: S,
  value: unknown,
  where: string,
): z.infer<S> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const fields = result.error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : where
    return `${path}（${issue.message}）`
  })
  throw new AppError('VALIDATION_FAILED', 400, `请求参数有误：${fields.join('；')}`, {
    details: { fields: result.error.issues.map((i) => i.path.join('.')) },
  })
}

export function notFoundHandler(): RequestHandler {
  return (req, res) => {
    sendError(res, 404, 'ROUTE_NOT_FOUND', `接口不存在：${req.method} ${req.path}`)
  }
}

/** Maps AppErrors (and body-parser errors) to the envelope; anything else is a logged 500. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.destroy()
      return
    }
    // Refused before its body was read (an upload onto a full disk): the reply closes the
    // connection, so the rest of a large body is not read for nothing.
    if (!req.complete) res.set('Connection', 'close')
    if (isDiskFullError(err)) {
      // ENOSPC or SQLITE_FULL wherever it came from (a task row, a result): a 507, not a 500.
      const refused = isAppError(err) && err.code === 'DISK_FULL' ? err : diskFull(err)
      log.warn({ method: req.method, path: req.path, err }, 'refused: disk full')
      sendError(res, refused.status, refused.code, refused.message)
      return
    }
    if (isAppError(err)) {
      sendError(res, err.status, err.code, err.message)
      return
    }
    const status = bodyParserStatus(err)
    if (status === 413) {
      sendError(res, 413, 'BODY_TOO_LARGE', '请求体过大')
      return
    }
    if (status === 400) {
      sendError(res, 400, 'BAD_JSON', '请求体必须是合法的JSON')
      return
    }
    log.error({ err, method: req.method, path: req.path }, 'request failed')
    sendError(res, 500, 'INTERNAL', '服务器内部错误，请稍后重试')
  }
}

function bodyParserStatus(err: unknown): number | null {
  if (typeof err === 'object' && err !== null && 'status' in err && 'type' in err) {
    const status = (err as { status: unknown }).status
    return typeof status === 'number' ? status : null
  }
  return null
}
