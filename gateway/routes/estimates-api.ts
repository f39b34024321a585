/**
 * `GET /api/relay/admin/estimates` (admin token): how good the start estimates were, estimated
 * against actual start per task and the median error (estimate-accuracy.ts).
 */
import { Router } from 'express'
import { ok } from '../http-envelope.js'
import type { EstimateAccuracy } from '../estimate-accuracy.js'
import type { HttpAuth } from '../http-auth.js'
import { appError } from '../../lib/errors.js'

export const ESTIMATES_PATH = '/api/relay/admin/estimates'

export function estimatesApi(deps: {
  readonly auth: HttpAuth
  readonly accuracy: EstimateAccuracy
}): Router {
  const router = Router({ caseSensitive: true })
  router.get(ESTIMATES_PATH, (req, res) => {
    const who = deps.auth.principal(req).kind
    if (who === 'anonymous') throw appError('UNAUTHORIZED')
    if (who !== 'admin') throw appError('FORBIDDEN', { variant: 'adminOnly' })
    ok(res, deps.accuracy.quality())
  })
  return router
}
