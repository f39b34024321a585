/** The envelope `{code, msg, data}` (docs/design.md §7), input validation, and the one error middleware. */
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express'
import type { Logger } from 'pino'
import { z } from 'zod'
import { diskFull, isDiskFullError } from './disk-space.js'
import { lingerThenDestroy } from './lingering-close.js'
import { appError, isAppError, type AppError } from '../lib/errors.js'

export function ok(res: Response, data: unknown, msg = 'ok'): void {
  res.json({ code: 0, msg, data })
}

/**
 * An error envelope: `code` is the HTTP status (never 0), `msg` the catalog's words
 * (protocol/errors.ts), `data.error` the stable error code. The GPU-server-compatible endpoints
 * answer in the same shape: run_server's `{code, msg}`, with `data.error` besides.
 */
export function sendError(res: Response, err: AppError): void {
  res.status(err.status).json({ code: err.status, msg: err.message, data: { error: err.code } })
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
  throw appError('VALIDATION_FAILED', {
    params: { fields: fields.join('；') },
    details: { fields: result.error.issues.map((i) => i.path.join('.')) },
  })
}

export function notFoundHandler(): RequestHandler {
  return (req, res) => {
    sendError(res, appError('ROUTE_NOT_FOUND', { params: { method: req.method, path: req.path } }))
  }
}

/** Maps AppErrors (and body-parser errors) to the envelope; anything else is a logged 500. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  // express knows an error handler by its four parameters.
  // eslint-disable-next-line @typescript-eslint/max-params
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.destroy()
      return
    }
    if (!req.complete) discardBody(req)
    if (isDiskFullError(err)) {
      // ENOSPC or SQLITE_FULL wherever it came from (a task row, a result): a 507, not a 500.
      const refused = isAppError(err) && err.code === 'DISK_FULL' ? err : diskFull(err)
      // Our own refusal (the threshold) is no news; a write that failed is logged with its error.
      const cause = isAppError(err) ? err.cause : err
      log.warn({ method: req.method, path: req.path, err: cause }, 'refused: disk full')
      sendError(res, refused)
      return
    }
    if (isAppError(err)) {
      sendError(res, err)
      return
    }
    if (err instanceof URIError) {
      // A path parameter with a broken %-escape (`/api/relay/files/abc%E4`): the router cannot decode it.
      sendError(res, appError('VALIDATION_FAILED', { variant: 'pathUndecodable' }))
      return
    }
    const status = bodyParserStatus(err)
    if (status === 413) {
      sendError(res, appError('BODY_TOO_LARGE'))
      return
    }
    if (status === 400) {
      sendError(res, appError('BAD_JSON'))
      return
    }
    log.error({ err, method: req.method, path: req.path }, 'request failed')
    sendError(res, appError('INTERNAL'))
  }
}

/** Past this much of an unread body the connection is closed instead of read on. */
const DISCARD_MAX_BYTES = 64 * 1024 * 1024

/**
 * Refused before its body was read (an upload onto a full disk): the reply goes out at once, and
 * the rest of the body is read and dropped (up to DISCARD_MAX_BYTES, then the connection is
 * closed). Closing at once would lose the reply for most clients: Python's requests (the PC app)
 * and fetch read a reply only once they have sent the body, and a closed socket fails the send.
 */
function discardBody(req: Request): void {
  let discarded = 0
  req.unpipe()
  req.on('data', (chunk: Buffer) => {
    discarded += chunk.length
    if (discarded > DISCARD_MAX_BYTES) lingerThenDestroy(req.socket)
  })
  req.resume()
}

function bodyParserStatus(err: unknown): number | null {
  if (typeof err === 'object' && err !== null && 'status' in err && 'type' in err) {
    const status = (err as { status: unknown }).status
    return typeof status === 'number' ? status : null
  }
  return null
}
