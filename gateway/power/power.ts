/**
 * Power on demand, put together: the store, the requester (command, URL, MQTT) and the manager,
 * fed by the task events, the GPU registry and the gateway's tick. What the gateway hands out as
 * `power` (the dashboard, metrics and estimates read it).
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { GatewayConfig } from '../config.js'
import type { Db } from '../db.js'
import type { GpuRegistry } from '../gpu-registry.js'
import type { TaskOutbox } from '../task-outbox.js'
import type { TaskStore } from '../task-store.js'
import { PowerManager } from './power-manager.js'
import { PowerRequester, type PowerRequestListener } from './power-requester.js'
import { PowerStore, type PowerRequest } from './power-store.js'
import { appError } from '../../lib/errors.js'
import type { PowerAction, PowerState, Topics } from '../../protocol/index.js'

export interface GpuPowerView {
  readonly gpu_id: string
  readonly state: PowerState
  /** Wall-clock ms of the last change of state. */
  readonly since: number
  readonly idle_since: number | null
  readonly last_request: PowerRequest | null
}

export interface PowerView {
  readonly gpus: readonly GpuPowerView[]
  /** Newest first. */
  readonly requests: readonly PowerRequest[]
}

export interface PowerControl {
  view(): PowerView
  /** One GPU's state (health's per-GPU view); null for a GPU never seen. */
  stateOf(gpuId: string): { readonly state: PowerState; readonly since: number } | null
  /** False while the GPU is being switched off: the claim scheduler grants it nothing new. */
  takesWork(gpuId: string): boolean
  /** Power-on request → GPU ready of recent boots (relay ms), newest first, up to 20. */
  recentBootMs(): number[]
  /** Relay ms since the first power-on request of the oldest boot under way; null if none. */
  bootElapsedMs(): number | null
  /** Each request's outcome once known (metrics); returns the unsubscribe. */
  onRequest(listener: PowerRequestListener): () => void
  /** An admin's request; GPU_NOT_FOUND for a GPU the relay may not power. */
  request(gpuId: string, action: PowerAction): PowerRequest
  tick(): void
  close(): void
}

export interface PowerDeps {
  readonly db: Db
  readonly client: MqttClient
  readonly topics: Topics
  readonly log: Logger
  readonly now: () => number
  readonly relay: () => number
  readonly registry: GpuRegistry
  readonly store: TaskStore
  readonly outbox: TaskOutbox
}

const RECENT_REQUESTS = 50
const WAKING_EVENTS: ReadonlySet<string> = new Set(['submitted', 'requeued', 'retried'])

export function createPower(config: GatewayConfig, deps: PowerDeps): PowerControl {
  const settings = config.power
  const log = deps.log.child({ part: 'power' })
  const store = new PowerStore(deps.db)
  const requester = new PowerRequester({ ...deps, settings, store, log })
  const credentialIds = Object.keys(config.credentials.gpus)
  const managed = settings.gpuIds ?? (credentialIds.length > 0 ? credentialIds : [...config.gpuIds])
  const manager = new PowerManager({
    inputs: {
      gpus: () => deps.registry.all(),
      counts: () => deps.store.counts(),
    },
    managed,
    auto: settings.auto,
    idleMs: settings.idleMs,
    bootDeadlineMs: settings.bootDeadlineMs,
    request: (r) => requester.request(r),
    onReady: ({ requestId, bootMs, at }) => {
      store.markReady(requestId, at, bootMs)
      log.info({ requestId, bootMs }, 'GPU ready after power-on')
    },
    relay: deps.relay,
    now: deps.now,
    lastRequestOf: (gpuId) => store.lastOf(gpuId),
  })
  const offRequests = requester.onRequest((r) => {
    if (r.action === 'stop' && r.outcome !== 'ok') manager.stopFailed(r.gpuId, r.id)
  })
  // A task's change is looked at now, not at the next tick (progress events aside: many).
  const offEvents = deps.outbox.subscribe((event) => {
    if (WAKING_EVENTS.has(event.kind)) manager.submitted()
    else if (event.kind !== 'progress') manager.tick()
  })
  log.info({ auto: settings.auto, gpus: managed }, 'power on demand')

  return {
    view: () => ({
      gpus: manager.all().map((g) => ({
        gpu_id: g.id,
        state: g.state,
        since: g.since.wall,
        idle_since: g.idleSince?.wall ?? null,
        last_request: store.latestOf(g.id) ?? null,
      })),
      requests: store.recent(RECENT_REQUESTS),
    }),
    stateOf(gpuId) {
      const gpu = manager.get(gpuId)
      return gpu ? { state: gpu.state, since: gpu.since.wall } : null
    },
    takesWork: (gpuId) => manager.takesWork(gpuId),
    recentBootMs: () => store.recentBootMs(),
    bootElapsedMs() {
      const began = manager
        .all()
        .flatMap((g) => (g.phase === 'booting' && g.boot ? [g.boot.firstAt] : []))
      return began.length > 0 ? deps.relay() - Math.min(...began) : null
    },
    onRequest: (listener) => requester.onRequest(listener),
    request(gpuId, action) {
      if (!manager.managed(gpuId)) throw appError('GPU_NOT_FOUND', { params: { id: gpuId } })
      const id = manager.manual(gpuId, action)
      const row = store.get(id)
      if (!row) throw new Error(`power request ${id} was not recorded`)
      return row
    },
    tick() {
      try {
        manager.tick()
      } catch (err) {
        log.error({ err }, 'power tick failed')
      }
    },
    close() {
      offEvents()
      offRequests()
      requester.close()
    },
  }
}
