/**
 * `GET /metrics`: the gateway's figures in Prometheus' text format (gateway/metrics/). For an
 * admin token or the metrics token (METRICS_TOKEN, which opens nothing else: a Prometheus server
 * holding it is not a user). No token: 401; another credential: 403, in the usual envelope.
 */
import { Router } from 'express'
import type { HttpAuth } from '../http-auth.js'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import { appError } from '../../lib/errors.js'

export const METRICS_PATH = '/metrics'

export interface MetricsRouteDeps {
  readonly metrics: GatewayMetrics
  readonly auth: HttpAuth
}

export function metricsApi(deps: MetricsRouteDeps): Router {
  const router = Router({ caseSensitive: true })
  router.get(METRICS_PATH, async (req, res) => {
    const who = deps.auth.principal(req).kind
    if (who === 'anonymous') throw appError('UNAUTHORIZED')
    if (who !== 'admin' && who !== 'metrics') throw appError('FORBIDDEN', { variant: 'adminOnly' })
    const { registry } = deps.metrics
    const body = await registry.metrics()
    res.status(200).set('Content-Type', registry.contentType).send(body)
  })
  return router
}
