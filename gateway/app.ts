/**
 * The express application: CORS, JSON body limit, who is calling (http-auth.ts), the route
 * groups, and one envelope for every error.
 */
import type { IncomingMessage } from 'node:http'
import express, { type Express, type RequestHandler } from 'express'
import { errorHandler, notFoundHandler } from './http-envelope.js'
import { ASSET_PATHS, HEYGEM_PATHS, TASK_PATHS } from '../protocol/index.js'
import { assetApi } from './routes/assets.js'
import type { RouteDeps } from './routes/deps.js'
import { healthApi } from './routes/health.js'
import { heygemApi } from './routes/heygem-api.js'
import { relayApi } from './routes/relay-api.js'
import { taskApi } from './routes/task-api.js'
import { uploadApi } from './routes/upload.js'

export interface AppDeps extends RouteDeps {
  readonly jsonBodyLimit: string
}

/**
 * run_server's CORS headers, on every reply (the H5 app runs in a browser), with the request
 * headers of the relay's own a browser may send (`Idempotency-Key`, `X-License-Key`) added.
 */
export const CORS_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
  'Access-Control-Allow-Headers':
    'Authorization, Content-Type, Range, Idempotency-Key, X-License-Key',
  'Access-Control-Expose-Headers':
    'Content-Length, Content-Range, Accept-Ranges, Content-Disposition',
})

/** CORS headers first, so errors and 404s carry them too; a preflight is answered here, before auth. */
const cors: RequestHandler = (req, res, next) => {
  res.set(CORS_HEADERS)
  if (req.method === 'OPTIONS') {
    res.status(200).end()
    return
  }
  next()
}

export function createApp(deps: AppDeps): Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('query parser', 'simple')
  // Paths are matched exactly as written: /API/heygem/… is not /api/heygem/… (nor does it slip
  // past the guard below, which also compares in lower case).
  app.set('case sensitive routing', true)
  app.use(cors)
  app.use(healthApi(deps)) // open: no credentials, before anything can refuse
  // run_server reads a JSON route's body as JSON whatever its Content-Type (a browser's
  // text/plain included); uploads and a bridge's result stream are left to their routes.
  app.use(express.json({ limit: deps.jsonBodyLimit, type: isJsonBody }))
  app.use(deps.auth.identify)
  const guard: RequestHandler = (req, res, next) => {
    const path = req.path.toLowerCase()
    if (path.startsWith('/api/relay/')) deps.auth.gpus(req, res, next)
    else if (path.startsWith('/api/')) deps.auth.users(req, res, next)
    else next()
  }
  app.use(guard)
  app.use(taskApi(deps))
  app.use(uploadApi(deps))
  app.use(heygemApi(deps))
  app.use(assetApi(deps))
  app.use(relayApi(deps))
  app.use(notFoundHandler())
  app.use(errorHandler(deps.log))
  return app
}

/** The routes whose body is JSON: everything but uploads and a bridge's result stream. */
const JSON_ROUTES: ReadonlySet<string> = new Set([
  HEYGEM_PATHS.checkFiles,
  HEYGEM_PATHS.submit,
  ASSET_PATHS.delete,
  TASK_PATHS.submit,
  TASK_PATHS.cancel,
  TASK_PATHS.retry,
])

/** JSON by its Content-Type anywhere, and on the JSON routes whatever its Content-Type says. */
function isJsonBody(req: IncomingMessage): boolean {
  const type = (req.headers['content-type'] ?? '').toLowerCase()
  if (/^application\/(?:[\w.-]+\+)?json\b/u.test(type)) return true
  return JSON_ROUTES.has((req.url ?? '').split('?')[0] ?? '')
}
