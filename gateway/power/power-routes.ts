/**
 * `GET /api/relay/power` (admin): every GPU's power state and the recent requests, newest first.
 * `POST /api/relay/power` `{gpu_id, action}` (admin): ask for power by hand (reason `manual`).
 */
import type { Request } from 'express'
import { Router } from 'express'
import { z } from 'zod'
import { ok, validate } from '../http-envelope.js'
import type { HttpAuth } from '../http-auth.js'
import type { PowerControl } from './power.js'
import { appError } from '../../lib/errors.js'
import { GpuId, PowerAction } from '../../protocol/index.js'

export const POWER_PATH = '/api/relay/power'

const ManualRequest = z.object({ gpu_id: GpuId, action: PowerAction })

export function powerApi(deps: { readonly power: PowerControl; readonly auth: HttpAuth }): Router {
  const { power, auth } = deps
  const router = Router({ caseSensitive: true })
  const adminOnly = (req: Request): void => {
    const who = auth.principal(req).kind
    if (who === 'anonymous') throw appError('UNAUTHORIZED')
    if (who !== 'admin') throw appError('FORBIDDEN', { variant: 'adminOnly' })
  }
  router.get(POWER_PATH, (req, res) => {
    adminOnly(req)
    ok(res, power.view())
  })
  router.post(POWER_PATH, (req, res) => {
    adminOnly(req)
    const body = validate(ManualRequest, req.body, 'body')
    ok(res, { request: power.request(body.gpu_id, body.action) })
  })
  return router
}
