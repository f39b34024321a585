/** `GET /api/heygem/health`: always answers while the gateway runs, with no credentials. */
import { Router } from 'express'
import type { RouteDeps } from './deps.js'
import type { QueueView } from '../task-service.js'
import { HEYGEM_PATHS } from '../../protocol/index.js'

export function healthApi(deps: Pick<RouteDeps, 'views' | 'mqttLink' | 'power'>): Router {
  const { views, mqttLink, power } = deps
  const router = Router({ caseSensitive: true })
  router.get(HEYGEM_PATHS.health, (_req, res) => {
    const q = views.queue()
    const link = mqttLink?.()
    // The relay is up even when the GPU is not: the PC app no longer fails here.
    res.json({
      code: 0,
      msg: 'ok',
      initialized: true,
      queue: queueInfo(q),
      gpu: {
        online: q.gpusOnline > 0,
        ready: q.gpusReady > 0,
        gpus_online: q.gpusOnline,
        gpus_ready: q.gpusReady,
        // Each GPU's power state (off, booting, online, idle, shutting-down) and since when.
        gpus: views.gpus().map((g) => {
          const p = power?.stateOf(g.id)
          return p ? { ...g, power: p.state, power_since: new Date(p.since).toISOString() } : g
        }),
      },
      relay: true,
      // The gateway's own MQTT link: a refused login or a broker away shows here, not only in logs.
      ...(link
        ? {
            mqtt: {
              state: link.state,
              since: new Date(link.since).toISOString(),
              ...(link.refusedCode === null ? {} : { return_code: link.refusedCode }),
            },
          }
        : {}),
    })
  })
  return router
}

/** The queue as run_server reports it (its four keys first), plus the relay's own keys. */
export interface QueueReply {
  /** Queued + processing (run_server counts the tasks it holds; the relay keeps history apart). */
  readonly total_tasks: number
  readonly processing: number
  readonly queued: number
  /** How many jobs run at once: the ready GPUs' capacities added up, at least 1. */
  readonly max_concurrent: number
  readonly gpus_online: number
  readonly eta_seconds: number
}

export function queueInfo(q: QueueView): QueueReply {
  return {
    total_tasks: q.queued + q.processing,
    processing: q.processing,
    queued: q.queued,
    max_concurrent: Math.max(1, q.capacity),
    gpus_online: q.gpusOnline,
    eta_seconds: q.etaSeconds,
  }
}
