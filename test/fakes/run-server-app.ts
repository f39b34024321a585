/**
 * The fake run_server's HTTP front, as Flask routes it: exact paths (anything else: Werkzeug's HTML
 * 404), the route's methods (else HTML 405 with `Allow`), automatic OPTIONS (200, empty, no auth),
 * the CORS headers of its `after_request` hook on every reply, `auth_required` on every route but
 * health (HTTP 401 `鉴权失败`), and a crash inside a route as Flask's HTML 500.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import {
  applyCors,
  authorized,
  FlaskBadRequest,
  sendFailure,
  sendHtmlError,
  sendJson,
} from './flask-reply.js'
import { pathOf } from './flask-request.js'
import { assetDelete, assetList, assetUpload } from './run-server-assets.js'
import type { RouteHandler, RunServerContext } from './run-server-context.js'
import { checkFiles, uploadFile } from './run-server-file-routes.js'
import { download, progress, queue, submit, uploadAndSubmit } from './run-server-task-routes.js'

export const RUN_SERVER_PATHS = {
  health: '/api/heygem/health',
  checkFiles: '/api/heygem/check_files',
  uploadFile: '/api/heygem/upload_file',
  submit: '/api/heygem/submit',
  upload: '/api/heygem/upload',
  progress: '/api/heygem/progress',
  download: '/api/heygem/download',
  queue: '/api/heygem/queue',
  assetUpload: '/api/asset/upload',
  assetList: '/api/asset/list',
  assetDelete: '/api/asset/delete',
} as const

interface Route {
  readonly method: 'GET' | 'POST'
  readonly handler: RouteHandler
  /** No `auth_required` (health only). */
  readonly open?: boolean
}

const health: RouteHandler = (_req, res, ctx) => {
  sendJson(res, 200, { code: 0, msg: 'ok', initialized: true, queue: { ...ctx.tasks.queueInfo() } })
  return Promise.resolve()
}

const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  [RUN_SERVER_PATHS.health, { method: 'GET', handler: health, open: true }],
  [RUN_SERVER_PATHS.checkFiles, { method: 'POST', handler: checkFiles }],
  [RUN_SERVER_PATHS.uploadFile, { method: 'POST', handler: uploadFile }],
  [RUN_SERVER_PATHS.submit, { method: 'POST', handler: submit }],
  [RUN_SERVER_PATHS.upload, { method: 'POST', handler: uploadAndSubmit }],
  [RUN_SERVER_PATHS.progress, { method: 'GET', handler: progress }],
  [RUN_SERVER_PATHS.download, { method: 'GET', handler: download }],
  [RUN_SERVER_PATHS.queue, { method: 'GET', handler: queue }],
  [RUN_SERVER_PATHS.assetUpload, { method: 'POST', handler: assetUpload }],
  [RUN_SERVER_PATHS.assetList, { method: 'GET', handler: assetList }],
  [RUN_SERVER_PATHS.assetDelete, { method: 'POST', handler: assetDelete }],
])

const ALLOW = { GET: 'GET, HEAD, OPTIONS', POST: 'OPTIONS, POST' } as const

function routePath(req: IncomingMessage): string {
  const raw = pathOf(req)
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw
  }
}

export interface RunServerAppOptions {
  /** '' = no auth. */
  readonly secret: string
  /** The context of the process that is up, or null while it is down. */
  readonly context: () => RunServerContext | null
}

export function createRunServerListener(options: RunServerAppOptions): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const ctx = options.context()
    if (ctx === null) {
      res.destroy()
      return
    }
    applyCors(res)
    res.setHeader('Server', 'Werkzeug/3.0.6 Python/3.10.12')
    const route = ROUTES.get(routePath(req))
    const method = req.method ?? 'GET'
    if (route === undefined) {
      req.resume()
      sendHtmlError(res, 404)
      return
    }
    if (method === 'OPTIONS') {
      req.resume()
      res.statusCode = 200
      res.setHeader('Allow', ALLOW[route.method])
      res.setHeader('Content-Type', 'text/html; charset=utf-8')
      res.setHeader('Content-Length', 0)
      res.end()
      return
    }
    if (!ALLOW[route.method].split(', ').includes(method) || method === 'OPTIONS') {
      req.resume()
      res.setHeader('Allow', ALLOW[route.method])
      sendHtmlError(res, 405)
      return
    }
    if (route.open !== true && !authorized(req.headers.authorization, options.secret)) {
      req.resume()
      ctx.events.refused()
      sendFailure(res, 401, '鉴权失败')
      return
    }
    route.handler(req, res, ctx).catch((err: unknown) => {
      req.resume()
      if (res.headersSent) {
        res.destroy()
        return
      }
      if (err instanceof FlaskBadRequest) {
        sendHtmlError(res, 400)
        return
      }
      ctx.log.warn({ err, path: routePath(req) }, 'route crashed (the real one answers 500)')
      sendHtmlError(res, 500)
    })
  }
}
