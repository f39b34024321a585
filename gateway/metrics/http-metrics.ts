/**
 * HTTP requests by method, route and status. The route is the pattern express matched
 * (`/api/heygem/task/status`, `/api/relay/files/:hash`), never the raw path: a client sending
 * random paths must not grow the label set (each label combination is a series held for ever).
 * A request no route answered (404, or refused before routing: bad credentials, body too large)
 * is `unmatched`. Methods are Node's parser's known list, statuses three digits: both bounded.
 */
import type { Request, RequestHandler } from 'express'
import type { Counter, Histogram } from 'prom-client'

export type HttpLabels = 'method' | 'route' | 'status'

export interface HttpMetricsDeps {
  readonly requests: Counter<HttpLabels>
  readonly duration: Histogram<HttpLabels>
  /** Monotonic ms. */
  readonly monotonic: () => number
}

export const UNMATCHED_ROUTE = 'unmatched'

/** The matched route's pattern, with the path its router is mounted at. */
export function routeOf(req: Request): string {
  const route: unknown = req.route
  if (route === null || typeof route !== 'object' || !('path' in route)) return UNMATCHED_ROUTE
  const { path } = route
  return typeof path === 'string' ? `${req.baseUrl}${path}` : UNMATCHED_ROUTE
}

/** Mounted first: counts every request once, when its reply is finished or its socket closed. */
export function httpMetrics(deps: HttpMetricsDeps): RequestHandler {
  return (req, res, next) => {
    const start = deps.monotonic()
    let done = false
    const record = (): void => {
      if (done) return
      done = true
      const labels = { method: req.method, route: routeOf(req), status: String(res.statusCode) }
      deps.requests.inc(labels)
      deps.duration.observe(labels, Math.max(0, deps.monotonic() - start) / 1000)
    }
    res.once('finish', record)
    res.once('close', record)
    next()
  }
}
