/**
 * startGateway: SQLite + file pool + (embedded broker) + MQTT client + dispatcher + HTTP API.
 * Dependencies (logger, clock) are passed in; only main.ts reads the environment.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import { AdminTopics } from './admin-topics.js'
import { createApp } from './app.js'
import type { GatewayConfig } from './config.js'
import { openDb } from './db.js'
import { Dispatcher } from './dispatcher.js'
import { FilePool } from './file-pool.js'
import { GpuRegistry } from './gpu-registry.js'
import { TaskService } from './task-service.js'
import { TaskStore } from './task-store.js'
import { Closer } from '../lib/lifecycle.js'
import { endClient } from '../lib/mqtt.js'
import { GpuState, parsePayload, topicsFor } from '../protocol/index.js'

/** Starts the embedded broker; main.ts passes broker/'s `startBroker` (the gateway never imports it). */
export type EmbeddedBrokerFactory = (
  config: GatewayConfig['broker'],
  deps: { log: Logger },
) => Promise<{ url: string; wsUrl: string | null; close(): Promise<void> }>

export interface GatewayDeps {
  readonly log: Logger
  readonly now?: () => number
  /** Required when `config.mqttUrl` is null. */
  readonly startBroker?: EmbeddedBrokerFactory
}

export interface GatewayHandle {
  /** http://host:port */
  readonly url: string
  /** The broker bridges and admins connect to. */
  readonly mqttUrl: string
  readonly mqttWsUrl: string | null
  readonly store: TaskStore
  close(): Promise<void>
}

const TICK_MS = 1_000

export async function startGateway(
  config: GatewayConfig,
  deps: GatewayDeps,
): Promise<GatewayHandle> {
  const log = deps.log.child({ component: 'gateway' })
  const now = deps.now ?? Date.now
  const closer = new Closer()
  try {
    await mkdir(config.dataDir, { recursive: true })
    const db = openDb(join(config.dataDir, 'gateway.sqlite'))
    closer.add(() => {
      db.close()
    })
    const pool = await FilePool.open(db, join(config.dataDir, 'files'))
    const store = new TaskStore(db)

    let mqttUrl = config.mqttUrl
    let mqttWsUrl: string | null = null
    if (mqttUrl === null) {
      if (!deps.startBroker) throw new Error('MQTT_URL is empty and no embedded broker was given')
      const broker = await deps.startBroker(config.broker, { log: deps.log })
      closer.add(() => broker.close())
      mqttUrl = broker.url
      mqttWsUrl = broker.wsUrl
    }

    const topics = topicsFor(config.topicRoot)
    const client = mqtt.connect(mqttUrl, {
      clientId: config.mqttClientId,
      clean: false,
      keepalive: 30,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
    })
    closer.add(() => endClient(client))
    client.on('error', (err) => log.warn({ err: err.message }, 'MQTT client error'))
    client.on('offline', () => log.warn({ mqttUrl }, 'MQTT broker unreachable; retrying'))

    const tasksRef: { service?: TaskService } = {}
    const admin = new AdminTopics(client, topics, log, () => {
      const q = tasksRef.service?.queue()
      return q ?? { queued: 0, processing: 0, gpusOnline: 0, etaSeconds: 0 }
    })
    closer.add(() => admin.close())

    const late: { dispatcher?: Dispatcher } = {}
    const registry = new GpuRegistry(db, config.gpuIds, log, {
      onOnline: (gpuId, holding, epoch) => late.dispatcher?.onGpuOnline(gpuId, holding, epoch),
      onPresumedOnline: (gpuId) => late.dispatcher?.requestRebirth(gpuId),
      onOffline: (gpuId) => late.dispatcher?.onGpuOffline(gpuId),
    })
    const dispatcher = new Dispatcher({
      store,
      pool,
      registry,
      client,
      topics,
      admin,
      log,
      now,
      maxAttempts: config.maxAttempts,
    })
    const service = new TaskService({
      store,
      pool,
      registry,
      dispatcher,
      admin,
      log,
      now,
      queueTtlMs: config.queueTtlMs,
      bootEstimateS: config.bootEstimateS,
      runEstimateS: config.runEstimateS,
    })
    tasksRef.service = service
    late.dispatcher = dispatcher
    const live = dispatcher
    let stopping = false
    // MQTT handlers never throw (STYLE): a failure is logged and the message dropped.
    client.on('message', (topic, payload, packet) => {
      if (stopping) return
      const parsed = topics.parseGpuTopic(topic)
      if (!parsed) return
      try {
        if (parsed.channel === 'events') {
          live.onEventMessage(parsed.gpuId, payload)
        } else if (parsed.channel === 'state') {
          const state = parsePayload(GpuState, payload)
          if (!state.ok) {
            log.warn({ gpuId: parsed.gpuId, error: state.error }, 'bad GPU state dropped')
            return
          }
          registry.apply(parsed.gpuId, state.value, now(), packet.retain)
        }
      } catch (err) {
        log.error({ err, topic }, 'MQTT message handling failed')
      }
    })
    await connectAndSubscribe(client, [topics.allGpus('state'), topics.allGpus('events')], log)
    live.repairUnpublished()

    const tick = setInterval(() => {
      try {
        registry.sweep(now())
        live.expireDue()
      } catch (err) {
        log.error({ err }, 'tick failed')
      }
    }, TICK_MS)
    closer.add(() => {
      clearInterval(tick)
    })

    const app = createApp({
      tasks: service,
      store,
      pool,
      log,
      now,
      jsonBodyLimit: config.jsonBodyLimit,
      uploadMaxBytes: config.uploadMaxBytes,
    })
    const server = createServer(app)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(config.port, config.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    closer.add(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
        }),
    )
    const port = (server.address() as AddressInfo).port
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
    const url = `http://${host}:${port}`
    closer.add(() => {
      stopping = true // runs first: no more MQTT work while the rest shuts down
    })
    log.info({ url, mqttUrl, mqttWsUrl }, 'gateway listening')
    return { url, mqttUrl, mqttWsUrl, store, close: () => closer.close() }
  } catch (err) {
    await closer.close().catch(() => undefined)
    throw err
  }
}

/** Wait for the first connection (at most 10 s; publishes queue meanwhile), then subscribe. */
async function connectAndSubscribe(
  client: MqttClient,
  filters: string[],
  log: Logger,
): Promise<void> {
  const connected = await new Promise<boolean>((resolve) => {
    if (client.connected) {
      resolve(true)
      return
    }
    const timer = setTimeout(() => {
      resolve(false)
    }, 10_000)
    client.once('connect', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
  if (!connected)
    log.warn('MQTT broker not reachable yet; the gateway serves HTTP and keeps retrying')
  const subscribe = (): void => {
    client.subscribe(filters, { qos: 1 }, (err) => {
      if (err) log.error({ err }, 'MQTT subscribe failed')
    })
  }
  subscribe()
}
