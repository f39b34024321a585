import { randomBytes } from 'node:crypto'
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
import { createApp } from './app.js'
import { AdminReads } from './admin-reads.js'
import { AssetStore } from './assets-store.js'
import type { BootHistory } from './boot-history.js'
import { callerAddresses } from './caller-address.js'
import { capConnectionsPerAddress } from './connection-cap.js'
import type { EmbeddedBrokerSettings, GatewayConfig } from './config.js'
import { openDb } from './db.js'
import { FilePool } from './file-pool.js'
import { httpAuth } from './http-auth.js'
import { LoginBackoff } from './login-backoff.js'
import { createGatewayMetrics, type GatewayMetrics } from './metrics/gateway-metrics.js'
import { progressData } from './progress-data.js'
import { RateLimiter } from './rate-limit.js'
import { createRelayCore } from './relay-core.js'
import type { TaskOutbox } from './task-outbox.js'
import type { TaskStore } from './task-store.js'
import type { Resolver } from './webhooks/url-guard.js'
import { startWebhooks, type Webhooks } from './webhooks/webhooks.js'
import { attachProgressSockets, type ProgressSocketOptions } from './ws-progress.js'
import { createPower, type PowerControl } from './power/power.js'
import { GATEWAY_USERNAME, topicsFor } from '../protocol/index.js'
import { Closer } from '../lib/lifecycle.js'
import { endClient, noDelay, watchMqttLink } from '../lib/mqtt.js'

/** Starts the embedded broker; main.ts passes broker/'s `startBroker` (the gateway never imports it). */
export type EmbeddedBrokerFactory = (
  config: EmbeddedBrokerSettings,
  deps: { log: Logger },
) => Promise<{
  url: string
  tlsUrl: string | null
  wsUrl: string | null
  /** Clients connected now (metrics); absent: not shown. */
  clientsConnected?: () => number
  close(): Promise<void>
}>

export interface GatewayDeps {
  readonly log: Logger
  readonly now?: () => number
  /** Required when `config.mqttUrl` is null. */
  readonly startBroker?: EmbeddedBrokerFactory
  /** Bounds and timers of `/ws/progress/{task_id}` (tests shorten the 1 s check). */
  readonly progressSockets?: ProgressSocketOptions
  /** Boot times the power controller measured (power-on → ready), for estimates. */
  readonly bootHistory?: BootHistory
  /** How webhook hosts are resolved (default: the system's; tests answer as DNS might). */
  readonly webhookResolver?: Resolver
}

export interface GatewayHandle {
  /** http://host:port */
  readonly url: string
  /** The broker bridges and admins connect to. */
  readonly mqttUrl: string
  readonly mqttWsUrl: string | null
  /** mqtts:// of the embedded broker when TLS is configured. */
  readonly mqttTlsUrl: string | null
  readonly store: TaskStore
  /** The task event stream (task-outbox.ts). */
  readonly outbox: TaskOutbox
  /** Power on demand (gateway/power/): `view()`, `recentBootMs()`, `onRequest(listener)`. */
  readonly power: PowerControl
  /** Prometheus metrics (`GET /metrics`); the power and webhook parts feed its counters. */
  readonly metrics: GatewayMetrics
  /** Webhook deliveries (gateway/webhooks/): `deliveriesOf(taskId)`, `onDelivery(listener)`. */
  readonly webhooks: Pick<Webhooks, 'deliveriesOf' | 'onDelivery'>
  close(): Promise<void>
}

const TICK_MS = 1_000
const monotonic = (): number => performance.now()

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
    const pool = await FilePool.open(db, join(config.dataDir, 'files'), {
      minFreeBytes: config.diskMinFreeBytes,
    })
    closer.add(() => pool.close()) // after the HTTP server: staged bytes of cut uploads go

    let mqttUrl = config.mqttUrl
    let mqttWsUrl: string | null = null
    let mqttTlsUrl: string | null = null
    let mqttClients: (() => number) | undefined
    // The gateway's own MQTT password: configured, or (embedded broker) made up for this run.
    let gatewaySecret = config.credentials.gateway
    if (mqttUrl === null) {
      if (!deps.startBroker) throw new Error('MQTT_URL is empty and no embedded broker was given')
      gatewaySecret ??= randomBytes(24).toString('base64url')
      const broker = await deps.startBroker(
        {
          ...config.broker,
          auth: {
            credentials: { ...config.credentials, gateway: gatewaySecret },
            allowAnonymous: config.mqttAllowAnonymous,
            topicRoot: config.topicRoot,
            maxPayloadBytes: config.mqttMaxPayloadBytes,
            gatewayClientId: config.mqttClientId,
          },
        },
        { log: deps.log },
      )
      closer.add(() => broker.close())
      mqttUrl = broker.url
      mqttWsUrl = broker.wsUrl
      mqttTlsUrl = broker.tlsUrl
      mqttClients = broker.clientsConnected
    }

    const topics = topicsFor(config.topicRoot)
    const client = noDelay(
      mqtt.connect(mqttUrl, {
        ...(gatewaySecret === null ? {} : { username: GATEWAY_USERNAME, password: gatewaySecret }),
        clientId: config.mqttClientId,
        clean: false,
        keepalive: 30,
        reconnectPeriod: 1_000,
        connectTimeout: 10_000,
      }),
    )
    closer.add(() => endClient(client))
    // A refused login (wrong secret) is retried with backoff; health shows the link's state.
    const link = watchMqttLink({ client, log, name: 'gateway' })

    const late: { power?: PowerControl } = {}
    const core = createRelayCore(config, {
      db,
      pool,
      client,
      topics,
      log,
      now,
      // Boot times measured by power on demand (created below, it needs the core's clock).
      bootHistory: deps.bootHistory ?? {
        recentBootMs: () => late.power?.recentBootMs() ?? [],
        bootElapsedMs: () => late.power?.bootElapsedMs() ?? null,
      },
      takesWork: (gpuId) => late.power?.takesWork(gpuId) ?? true,
    })
    closer.add(() => core.close())
    // The configured port at once (a restart resumes deliveries before it listens).
    let listenPort: number | null = config.port === 0 ? null : config.port
    const webhooks = await startWebhooks(config.webhooks, {
      db,
      dataDir: config.dataDir,
      outbox: core.outbox,
      store: core.store,
      views: core.views,
      log,
      now,
      relay: core.relay,
      ownPort: () => listenPort,
      ...(deps.webhookResolver ? { resolve: deps.webhookResolver } : {}),
    })
    closer.add(() => webhooks.close())
    let stopping = false
    client.on('message', (topic, payload, packet) => {
      if (!stopping) core.onMessage(topic, payload, packet.retain)
    })
    await connectAndSubscribe(client, [topics.allGpus('state'), topics.allGpus('events')], log)
    core.dispatcher.repairUnpublished()

    const power = createPower(config, {
      db,
      client,
      topics,
      log,
      now,
      relay: core.relay,
      registry: core.registry,
      store: core.store,
      outbox: core.outbox,
    })
    late.power = power
    closer.add(() => {
      power.close()
    })
    const tick = setInterval(() => {
      core.tick()
      power.tick()
    }, TICK_MS)
    closer.add(() => {
      clearInterval(tick)
    })

    // Monotonic: a wall-clock step neither frees nor locks out an address.
    const logins = new LoginBackoff({
      now: () => performance.now(),
      threshold: config.loginFailuresBeforeWait,
    })
    const callers = callerAddresses(config.trustedProxies)
    const metrics = createGatewayMetrics({
      db,
      outbox: core.outbox,
      gpus: () => core.registry.all(),
      mqttLink: () => link.current(),
      ...(mqttClients ? { mqttClients } : {}),
      power,
      now,
    })
    closer.add(() => metrics.close())
    closer.add(power.onRequest((r) => metrics.powerRequest(r.action, r.outcome)))
    closer.add(webhooks.onDelivery((d) => metrics.webhookDelivery(d.status)))
    const app = createApp({
      views: core.views,
      actions: core.actions,
      store: core.store,
      lifecycle: core.lifecycle,
      outbox: core.outbox,
      idleTimeoutMs: config.idleTimeoutMs,
      taskEvents: config.taskEvents,
      auth: httpAuth(
        {
          apiSecret: config.apiSecret,
          adminToken: config.adminToken,
          metricsToken: config.metricsToken,
          credentials: config.credentials,
          logins,
          callers,
        },
        log,
      ),
      // Windows of elapsed time: a wall-clock step neither clears nor stretches a limit.
      submitLimiter: new RateLimiter(config.rateLimits.submitsPerMinute, monotonic),
      uploadLimiter: new RateLimiter(config.rateLimits.uploadsPerMinute, monotonic),
      pool,
      assets: new AssetStore(db, config.assetTtlMs),
      log,
      now,
      jsonBodyLimit: config.jsonBodyLimit,
      uploadMaxBytes: config.uploadMaxBytes,
      resultMaxBytes: config.resultMaxBytes,
      handOvers: core.handOvers,
      waitingStatus: config.waitingStatus,
      mqttLink: () => link.current(),
      power,
      metrics,
      estimateAccuracy: core.estimateAccuracy,
      webhooks,
      admin: { registry: core.registry, reads: new AdminReads(db), power, webhooks },
    })
    const server = createServer(
      {
        headersTimeout: config.headersTimeoutMs,
        // No limit on a request's total time: a long upload that keeps sending is fine; one
        // that goes quiet is closed by the idle timeout below.
        requestTimeout: 0,
        // How often headersTimeout is checked (Node's default is 30 s).
        connectionsCheckingInterval: Math.min(1_000, config.headersTimeoutMs),
      },
      app,
    )
    // `Expect: 100-continue` is answered by the app once the caller is authenticated and its
    // declared length allowed (body-gate.ts), not by Node before anything is checked.
    server.on('checkContinue', app)
    const connections = capConnectionsPerAddress(server, {
      max: config.maxConnectionsPerIp,
      log,
      exempt: (address) => callers.trusted(address),
    })
    // Sockets idle (nothing read, nothing written) this long are destroyed. Upgraded WebSockets
    // manage their own liveness (pings) and clear this timeout.
    server.setTimeout(config.idleTimeoutMs)
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
          connections.close()
          server.close(() => resolve())
          server.closeAllConnections()
        }),
    )
    // Upgraded sockets are no longer the HTTP server's: closed before it (the closer runs backwards).
    const progressDeps = { views: core.views, waitingStatus: config.waitingStatus }
    const progressSockets = attachProgressSockets(
      server,
      {
        log,
        apiSecret: config.apiSecret,
        logins,
        callers,
        progressOf: (taskId) => {
          const row = core.store.get(taskId)
          return row ? progressData(progressDeps, row) : null
        },
      },
      deps.progressSockets,
    )
    closer.add(() => progressSockets.close())
    const port = (server.address() as AddressInfo).port
    listenPort = port
    const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host
    const url = `http://${host}:${port}`
    closer.add(() => {
      stopping = true // runs first: no more MQTT work while the rest shuts down
    })
    log.info({ url, mqttUrl, mqttTlsUrl, mqttWsUrl }, 'gateway listening')
    return {
      url,
      mqttUrl,
      mqttWsUrl,
      mqttTlsUrl,
      store: core.store,
      outbox: core.outbox,
      power,
      metrics,
      webhooks,
      close: () => closer.close(),
    }
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
