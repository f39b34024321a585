/**
 * The express application: CORS, who is calling (http-auth.ts, from the headers alone), the body
 * gate and the JSON parser (body-gate.ts: nothing of a body is read before both), the route
 * groups, and one envelope for every error.
 */
import express, { type Express, type Request, type RequestHandler } from 'express'
import {
  bodyGate,
  closeBodiesNobodyReads,
  closeUnreadOnError,
  closeUnreadOnNotFound,
  isJsonBody,
  parseByteSize,
} from './body-gate.js'
import { errorHandler, notFoundHandler } from './http-envelope.js'
import { adminApi, adminGate } from './routes/admin-api.js'
import { assetApi } from './routes/assets.js'
import { dashboardFiles } from './routes/dashboard.js'
import type { RouteDeps } from './routes/deps.js'
import type { GatewayMetrics } from './metrics/gateway-metrics.js'
import { healthApi } from './routes/health.js'
import { estimatesApi } from './routes/estimates-api.js'
import { heygemApi } from './routes/heygem-api.js'
import { metricsApi } from './routes/metrics.js'
import { relayApi } from './routes/relay-api.js'
import { relayEvents } from './routes/relay-events.js'
import { taskApi } from './routes/task-api.js'
import { taskEvents } from './routes/task-events.js'
import { uploadApi } from './routes/upload.js'
import { powerApi } from './power/power-routes.js'

export interface AppDeps extends RouteDeps {
  /** JSON_BODY_LIMIT as written (`1mb`). */
  readonly jsonBodyLimit: string
  /** HTTP_IDLE_TIMEOUT_MS: an event-stream client that takes nothing this long is closed. */
  readonly idleTimeoutMs: number
  /** Prometheus metrics: every request is counted, and `GET /metrics` serves them. */
  readonly metrics?: GatewayMetrics
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

/** Under /api/ (in any letter case): the paths the guard below holds to credentials. */
const isApiPath = (req: Request): boolean => req.path.toLowerCase().startsWith('/api/')

export function createApp(deps: AppDeps): Express {
  const jsonLimitBytes = parseByteSize(deps.jsonBodyLimit)
  if (jsonLimitBytes === null)
    throw new Error(`JSON_BODY_LIMIT is not a size: ${deps.jsonBodyLimit}`)
  const app = express()
  app.disable('x-powered-by')
  app.set('query parser', 'simple')
  // Paths are matched exactly as written: /API/heygem/… is not /api/heygem/… (nor does it slip
  // past the guard below, which also compares in lower case).
  app.set('case sensitive routing', true)
  if (deps.metrics) app.use(deps.metrics.http) // first: every request counted, refusals too
  app.use(closeBodiesNobodyReads)
  app.use(cors)
  app.use(healthApi(deps)) // open: no credentials, before anything can refuse
  app.use(dashboardFiles()) // issue-10 dashboard: static files, no secrets in them (open)
  // Who is calling, from the headers alone: refused credentials are answered before a byte of
  // the body is read (and the connection closed, body-gate.ts).
  app.use(deps.auth.identify)
  const guard: RequestHandler = (req, res, next) => {
    const path = req.path.toLowerCase()
    if (path.startsWith('/api/relay/')) deps.auth.gpus(req, res, next)
    else if (isApiPath(req)) deps.auth.users(req, res, next)
    else next()
  }
  // Admins only (it decides itself); a GET with no body, open for as long as the admin listens:
  // before the guard, the body gate and the parsers.
  app.use(relayEvents({ outbox: deps.outbox, auth: deps.auth, stuckMs: deps.idleTimeoutMs }))
  // An admin or the metrics token (it decides itself); a GET with no body, like the stream above.
  if (deps.metrics) app.use(metricsApi({ metrics: deps.metrics, auth: deps.auth }))
  if (deps.estimateAccuracy) {
    app.use(estimatesApi({ auth: deps.auth, accuracy: deps.estimateAccuracy })) // admins only
  }
  app.use(adminGate(deps.auth)) // issue-10 dashboard: /api/relay/admin/* for admins only
  app.use(guard)
  app.use(bodyGate({ jsonLimitBytes, uploadMaxBytes: deps.uploadMaxBytes }))
  // run_server reads a JSON route's body as JSON whatever its Content-Type (a browser's
  // text/plain included); uploads and a bridge's result stream are left to their routes. Only
  // under /api/, where the guard has let the caller in: no other path reads a body.
  app.use('/api', express.json({ limit: jsonLimitBytes, type: isJsonBody }))
  app.use(taskApi(deps))
  app.use(
    taskEvents({
      views: deps.views,
      outbox: deps.outbox,
      auth: deps.auth,
      maxPerCaller: deps.taskEvents?.maxPerCaller ?? 8,
      heartbeatMs: deps.taskEvents?.heartbeatMs ?? 5_000,
      stuckMs: deps.idleTimeoutMs,
    }),
  )
  app.use(uploadApi(deps))
  app.use(heygemApi(deps))
  app.use(assetApi(deps))
  app.use(relayApi(deps))
  if (deps.power) app.use(powerApi({ power: deps.power, auth: deps.auth }))
  if (deps.admin) app.use(adminApi(deps, deps.admin)) // issue-10 dashboard: admins only
  app.use(closeUnreadOnNotFound)
  app.use(notFoundHandler())
  app.use(closeUnreadOnError)
  app.use(errorHandler(deps.log))
  return app
}
