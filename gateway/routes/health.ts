/** `GET /api/heygem/health`: always answers while the gateway runs, with no credentials. */
import { Router } from 'express'
import type { TaskService } from '../task-service.js'
import { HEYGEM_PATHS } from '../../protocol/index.js'

export function healthApi(views: TaskService): Router {
  const router = Router({ caseSensitive: true })
  router.get(HEYGEM_PATHS.health, (_req, res) => {
    const q = views.queue()
    // The relay is up even when the GPU is not: the PC app no longer fails here.
    res.json({
      code: 0,
      msg: 'ok',
      initialized: true,
      queue: queueInfo(q),
      gpu: { online: q.gpusOnline > 0, gpus_online: q.gpusOnline, gpus: views.gpus() },
      relay: true,
    })
  })
  return router
}

export function queueInfo(q: ReturnType<TaskService['queue']>): {
  queued: number
  processing: number
  gpus_online: number
  eta_seconds: number
} {
  return {
    queued: q.queued,
    processing: q.processing,
    gpus_online: q.gpusOnline,
    eta_seconds: q.etaSeconds,
  }
}
