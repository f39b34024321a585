/**
 * What stands between an authenticated request and the reading of its body (docs/design.md §7):
 * a declared `Content-Length` over the route's limit is refused with 413 before a byte of the body
 * is read, and only then is a client that asked `Expect: 100-continue` told to send it. A reply
 * sent while a body is still unread closes the connection (otherwise Node would read the rest,
 * however long, to keep the connection alive); every refused credential does, whatever was sent.
 */
import type { IncomingMessage } from 'node:http'
import type { ErrorRequestHandler, RequestHandler, Response } from 'express'
import { isDiskFullError } from './disk-space.js'
import { closeAfterReply } from './lingering-close.js'
import { tooLarge } from './multipart.js'
import { appError, isAppError } from '../lib/errors.js'
import { ASSET_PATHS, HEYGEM_PATHS, TASK_PATHS, type ErrorCode } from '../protocol/index.js'

/** The routes whose body is JSON: everything but uploads and a bridge's result stream. */
const JSON_ROUTES: ReadonlySet<string> = new Set([
  HEYGEM_PATHS.checkFiles,
  HEYGEM_PATHS.submit,
  ASSET_PATHS.delete,
  TASK_PATHS.submit,
  TASK_PATHS.cancel,
  TASK_PATHS.retry,
])

/** Multipart routes and how many files of up to the upload limit each takes. */
const UPLOAD_ROUTES: ReadonlyMap<string, number> = new Map([
  [HEYGEM_PATHS.uploadFile, 1],
  [ASSET_PATHS.upload, 1],
  [HEYGEM_PATHS.upload, 2],
])
/** Room for a multipart body's boundaries, part headers and small fields. */
const MULTIPART_OVERHEAD_BYTES = 1024 * 1024
/** A bridge's result stream: its size limit is its route's (RESULT_MAX_BYTES). */
const RESULT_ROUTE = /^\/api\/relay\/tasks\/[^/]+\/result$/

/** Errors answered with the connection closed, whatever of the body was read. */
const ALWAYS_CLOSE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'UNAUTHORIZED',
  'TOO_MANY_FAILED_LOGINS',
])

const UNITS: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }

/** `1mb`, `100kb`, `512` (bytes), as body-parser reads JSON_BODY_LIMIT; null when malformed. */
export function parseByteSize(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(text)
  if (!match) return null
  const unit = UNITS[(match[2] ?? 'b').toLowerCase()] ?? 1
  return Math.floor(Number(match[1]) * unit)
}

function pathOf(req: IncomingMessage): string {
  return ((req as { originalUrl?: string }).originalUrl ?? req.url ?? '').split('?')[0] ?? ''
}

/** JSON by its Content-Type anywhere, and on the JSON routes whatever its Content-Type says. */
export function isJsonBody(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').toLowerCase()
  if (/^application\/(?:[\w.-]+\+)?json\b/u.test(type)) return true
  return JSON_ROUTES.has(pathOf(req))
}

/** True while a request's body is at least partly unread. */
export function bodyUnread(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  const hasBody =
    req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
  return hasBody && !req.complete
}

export interface BodyGateOptions {
  readonly jsonLimitBytes: number
  readonly uploadMaxBytes: number
}

/**
 * After authentication, before any body parser: the declared length against the route's limit
 * (JSON routes and anything that is no upload: the JSON limit), then `100 Continue` if asked.
 */
export function bodyGate(o: BodyGateOptions): RequestHandler {
  return (req, res, next) => {
    const path = pathOf(req)
    const declared = req.headers['content-length']
    if (declared !== undefined && !RESULT_ROUTE.test(path)) {
      const files = req.method === 'POST' && !isJsonBody(req) ? UPLOAD_ROUTES.get(path) : undefined
      const limit =
        files === undefined ? o.jsonLimitBytes : files * o.uploadMaxBytes + MULTIPART_OVERHEAD_BYTES
      if (Number(declared) > limit) {
        closeAfterReply(req, res)
        next(files === undefined ? appError('BODY_TOO_LARGE') : tooLarge(o.uploadMaxBytes))
        return
      }
    }
    if ((req.headers.expect ?? '').toLowerCase() === '100-continue') res.writeContinue()
    next()
  }
}

/**
 * First of all: a body on a request no route reads one of (anything but POST: health, a
 * preflight, downloads) is never read; its reply closes the connection.
 */
export const closeBodiesNobodyReads: RequestHandler = (req, res, next) => {
  if (req.method !== 'POST' && bodyUnread(req)) closeAfterReply(req, res)
  next()
}

function closeIfUnread(req: IncomingMessage, res: Response, err?: unknown): void {
  const refusal = isAppError(err) && ALWAYS_CLOSE.has(err.code)
  // A full disk refuses a known caller's upload before its body is read: the error handler reads
  // and drops a bounded rest of it instead, so a client that reads its reply only after sending
  // (Python's requests, fetch) gets the 507 rather than a broken pipe.
  const drained = !refusal && isDiskFullError(err)
  if (res.headersSent) return
  // A stranger's connection is closed at once, nothing more of it read; anyone else's lingers,
  // so that the reply reaches a client still sending (lingering-close.ts).
  if (refusal) res.setHeader('Connection', 'close')
  else if (bodyUnread(req) && !drained) closeAfterReply(req, res)
}

/** Before the 404 handler: a body nobody read is not read after the reply either. */
export const closeUnreadOnNotFound: RequestHandler = (req, res, next) => {
  closeIfUnread(req, res)
  next()
}

/** Before the error handler: the same, and always after refused credentials. */
// express knows an error handler by its four parameters.
// eslint-disable-next-line @typescript-eslint/max-params
export const closeUnreadOnError: ErrorRequestHandler = (err: unknown, req, res, next) => {
  closeIfUnread(req, res, err)
  next(err)
}
