/**
 * The gateway's Prometheus metrics (`GET /metrics`, routes/metrics.ts). One registry per gateway,
 * never prom-client's global one: two gateways in one process (the tests) keep their own figures.
 * Gauges are read from their sources when scraped; histograms and counters are fed as things
 * happen (task-timings.ts, http-metrics.ts, and the counters the power and webhook parts call).
 * Every label takes a bounded set of values: states, GPU ids, route patterns, status codes.
 */
import type { RequestHandler } from 'express'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { Db } from '../db.js'
import type { TaskOutbox } from '../task-outbox.js'
import { httpMetrics } from './http-metrics.js'
import { TaskFigures } from './task-figures.js'
import { TaskTimings } from './task-timings.js'
import type { MqttLink } from '../../lib/mqtt.js'

/** A GPU as the metrics read it (gpu-registry.ts's GpuPresence fits). */
export interface GpuFigures {
  readonly id: string
  readonly online: boolean
  readonly ready: boolean
  readonly capacity: number
}

/** The power part's view (gateway/power): each GPU's power state. */
export interface PowerSource {
  view(): { readonly gpus: readonly { readonly gpu_id: string; readonly state: string }[] }
}

export const POWER_STATES = ['off', 'booting', 'online', 'idle', 'shutting-down'] as const

export interface MetricsSources {
  readonly db: Db
  readonly outbox: Pick<TaskOutbox, 'subscribe'>
  readonly gpus: () => readonly GpuFigures[]
  /** The gateway's own MQTT link. */
  readonly mqttLink: () => MqttLink
  /** Clients connected to the embedded broker; absent with an external broker (not shown). */
  readonly mqttClients?: () => number
  readonly power?: PowerSource
  /** Wall-clock ms (the age of the oldest queued task, from its submit time). */
  readonly now: () => number
  /** Monotonic ms for durations (default performance.now). */
  readonly monotonic?: () => number
}

export interface GatewayMetrics {
  readonly registry: Registry
  /** Mounted first in the app: counts every HTTP request. */
  readonly http: RequestHandler
  /** A power request and how it ended (`action`: start, stop; `outcome`: a word of the power part). */
  powerRequest(action: string, outcome: string): void
  /** A webhook delivery attempt and how it ended (`outcome`: a word of the webhook part). */
  webhookDelivery(outcome: string): void
  close(): void
}

const WAIT_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400]
const RUN_BUCKETS_S = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600]
const HTTP_BUCKETS_S = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

export function createGatewayMetrics(sources: MetricsSources): GatewayMetrics {
  const registry = new Registry()
  const registers = [registry]
  const monotonic = sources.monotonic ?? (() => performance.now())
  const figures = new TaskFigures(sources.db)

  new Gauge({
    name: 'relay_tasks',
    help: 'Tasks kept by the gateway, by state.',
    labelNames: ['state'],
    registers,
    collect() {
      for (const [state, n] of Object.entries(figures.byState())) this.set({ state }, n)
    },
  })
  new Gauge({
    name: 'relay_queue_length',
    help: 'Tasks waiting for a GPU.',
    registers,
    collect() {
      this.set(figures.byState().queued)
    },
  })
  new Gauge({
    name: 'relay_queue_oldest_age_seconds',
    help: 'Age of the oldest queued task (since its submit); 0 when none is queued.',
    registers,
    collect() {
      const at = figures.oldestQueuedAt()
      this.set(at === null ? 0 : Math.max(0, sources.now() - at) / 1000)
    },
  })
  const gpuGauge = (name: string, help: string, value: (g: GpuFigures) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['gpu_id'],
      registers,
      collect() {
        this.reset() // a GPU no longer known leaves no stale series
        for (const g of sources.gpus()) this.set({ gpu_id: g.id }, value(g))
      },
    })
  }
  gpuGauge('relay_gpu_online', 'The GPU bridge is connected (1) or not (0).', (g) =>
    g.online ? 1 : 0,
  )
  gpuGauge(
    'relay_gpu_ready',
    'The GPU is online and its service takes work (1) or not (0).',
    (g) => (g.online && g.ready ? 1 : 0),
  )
  gpuGauge('relay_gpu_capacity', 'Tasks the GPU runs at once, as its bridge declared.', (g) =>
    g.online ? g.capacity : 0,
  )
  const { power } = sources
  if (power) {
    new Gauge({
      name: 'relay_gpu_power_state',
      help: 'Power state of each GPU: 1 for its current state, 0 for the others.',
      labelNames: ['gpu_id', 'state'],
      registers,
      collect() {
        this.reset()
        for (const g of power.view().gpus) {
          for (const state of POWER_STATES) {
            this.set({ gpu_id: g.gpu_id, state }, g.state === state ? 1 : 0)
          }
        }
      },
    })
  }
  const { mqttClients } = sources
  if (mqttClients) {
    new Gauge({
      name: 'relay_mqtt_clients_connected',
      help: 'Clients connected to the embedded MQTT broker (the gateway itself included).',
      registers,
      collect() {
        this.set(mqttClients())
      },
    })
  }
  new Gauge({
    name: 'relay_mqtt_link_up',
    help: "The gateway's own MQTT connection is up (1) or not (0).",
    registers,
    collect() {
      this.set(sources.mqttLink().state === 'connected' ? 1 : 0)
    },
  })

  const powerRequests = new Counter({
    name: 'relay_power_requests_total',
    help: 'Power-on and power-off requests, by action and outcome.',
    labelNames: ['action', 'outcome'],
    registers,
  })
  const webhookDeliveries = new Counter({
    name: 'relay_webhook_deliveries_total',
    help: 'Webhook delivery attempts, by outcome.',
    labelNames: ['outcome'],
    registers,
  })
  const timings = new TaskTimings({
    outbox: sources.outbox,
    monotonic,
    queueWait: new Histogram({
      name: 'relay_task_queue_wait_seconds',
      help: 'From entering the queue (submit, retry) to the claim by a GPU.',
      buckets: WAIT_BUCKETS_S,
      registers,
    }),
    duration: new Histogram({
      name: 'relay_task_duration_seconds',
      help: 'From the claim to the end of the task, by end state.',
      labelNames: ['state'],
      buckets: RUN_BUCKETS_S,
      registers,
    }),
  })
  const http = httpMetrics({
    monotonic,
    requests: new Counter({
      name: 'relay_http_requests_total',
      help: 'HTTP requests, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      registers,
    }),
    duration: new Histogram({
      name: 'relay_http_request_duration_seconds',
      help: 'HTTP request time until the reply ended, by method, route pattern and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: HTTP_BUCKETS_S,
      registers,
    }),
  })

  return {
    registry,
    http,
    powerRequest: (action, outcome) => powerRequests.inc({ action, outcome }),
    webhookDelivery: (outcome) => webhookDeliveries.inc({ outcome }),
    close: () => timings.close(),
  }
}
