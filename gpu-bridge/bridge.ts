/**
 * startBridge: the GPU machine's MQTT client (docs/design.md §2, §3). A fixed client id and
 * clean-session=false, so tasks published while the GPU was off wait in the broker; presence with
 * epochs (presence.ts); task messages stored durably before they are acknowledged; the runner
 * claims and runs them through the GPU service adapter.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { GpuAdapter } from './adapters/types.js'
import { createAdapter } from './adapters/registry.js'
import type { BridgeConfig } from './config.js'
import { GatewayFiles } from './gateway-files.js'
import { openInbox } from './inbox-open.js'
import { Presence } from './presence.js'
import { ReadinessWatch } from './readiness.js'
import { Runner } from './runner.js'
import { errorMessage } from '../lib/errors.js'
import { endClient, noDelay, publish, watchMqttLink } from '../lib/mqtt.js'
import {
  GpuControl,
  bridgeClientId,
  gpuBearer,
  TaskMessage,
  encodePayload,
  parsePayload,
  topicsFor,
  type BridgeEvent,
} from '../protocol/index.js'

/** A resumed session is settled once no offer has arrived for this long (monotonic). */
const SETTLE_MS = 2_000

export interface BridgeDeps {
  readonly log: Logger
  readonly now?: () => number
  /** Defaults to the adapter named in the config. */
  readonly adapter?: GpuAdapter
}

export interface BridgeHandle {
  readonly gpuId: string
  /** The epoch of the current (or last) connection. */
  epoch(): number
  isConnected(): boolean
  /** Graceful: announce offline, disconnect, keep the inbox for the next start. */
  close(): Promise<void>
}

export async function startBridge(config: BridgeConfig, deps: BridgeDeps): Promise<BridgeHandle> {
  const now = deps.now ?? Date.now
  const log = deps.log.child({ component: 'gpu-bridge', gpuId: config.gpuId })
  await mkdir(config.dataDir, { recursive: true })
  const inbox = openInbox(join(config.dataDir, 'bridge.sqlite'), {
    onCorruptRow: (taskId) => log.error({ taskId }, 'unreadable inbox row removed'),
    onMovedAside: (movedTo, err) =>
      log.error({ err, movedTo }, 'inbox unreadable: moved aside, starting empty'),
  })
  const adapter =
    deps.adapter ??
    createAdapter(config.adapter, { url: config.serviceUrl, secret: config.serviceSecret })
  const topics = topicsFor(config.topicRoot)
  let onReadiness = (): void => undefined
  const readiness = new ReadinessWatch({
    adapter,
    intervalMs: config.readyPollMs,
    log,
    onChange: () => onReadiness(),
  })
  const first = await readiness.check()
  if (first.state === 'relay') {
    readiness.stop()
    inbox.close()
    throw new Error(
      `GPU_SERVICE_URL ${config.serviceUrl} is a gpu-relay gateway (its health says relay: true), ` +
        'not the GPU service: point it at run_server on this machine, e.g. http://127.0.0.1:8383',
    )
  }
  const presence = new Presence({
    readiness: () => readiness.state,
    inbox,
    stateTopic: topics.gpuState(config.gpuId),
    capacity: config.capacity,
    heartbeatMs: config.heartbeatMs,
    adapterName: adapter.name,
    types: adapter.taskTypes,
    now,
    log,
  })
  const client: MqttClient = noDelay(
    mqtt.connect(config.mqttUrl, {
      ...(config.secret === null ? {} : { username: config.gpuId, password: config.secret }),
      clientId: bridgeClientId(config.gpuId),
      clean: false,
      keepalive: config.keepaliveS,
      reconnectPeriod: 1_000,
      connectTimeout: 10_000,
      will: presence.will(),
    }),
  )
  presence.attach(client)

  const send = (event: BridgeEvent): void => {
    publish(client, {
      topic: topics.gpuEvents(config.gpuId),
      payload: encodePayload(event),
      qos: 1,
    }).catch((err: unknown) => {
      log.debug({ err: errorMessage(err), kind: event.kind }, 'event not published')
    })
  }
  const runner = new Runner({
    adapter,
    files: new GatewayFiles(
      config.gatewayUrl,
      config.secret === null ? null : gpuBearer(config.gpuId, config.secret),
    ),
    inbox,
    log,
    now,
    pollMs: config.pollMs,
    progressIntervalMs: config.progressIntervalMs,
    serviceDownMs: config.serviceDownMs,
    onServiceTrouble: (state) => readiness.suspect(state),
    capacity: config.capacity,
    claimRetryMs: config.claimRetryMs,
    resendMs: config.resendMs,
    send,
    isConnected: () => client.connected,
    isReady: () => readiness.ready,
    epoch: () => presence.epoch,
  })
  // Tell the gateway at once (not at the next heartbeat), and claim what waited for the service.
  onReadiness = () => {
    if (!client.connected) return // the next connection resumes anyway
    presence.heartbeat()
    runner.resume()
  }
  readiness.start()
  let closing = false

  // Acknowledge a message only once it is stored (docs/design.md §3.5): mqtt.js sends PUBACK after this
  // callback, and withholds it when we pass an error.
  client.handleMessage = (packet, callback) => {
    try {
      route(packet.topic, Buffer.from(packet.payload))
      callback()
    } catch (err) {
      log.error({ err, topic: packet.topic }, 'could not store message; not acknowledged')
      callback(err instanceof Error ? err : new Error(String(err)))
    }
  }

  // Offers of the types we run (docs/design.md §3.2) and tasks sent to us alone are the same message.
  const offerTypes = new Set<string>(adapter.taskTypes)
  const isTaskTopic = (topic: string): boolean => {
    if (topic === topics.gpuTasks(config.gpuId)) return true
    const type = topics.parseOffersTopic(topic)
    return type !== null && offerTypes.has(type)
  }

  /** When the last offer arrived (monotonic ms): a resumed session settles once they stop. */
  let lastOfferAt = performance.now()
  function route(topic: string, payload: Buffer): void {
    if (isTaskTopic(topic)) {
      lastOfferAt = performance.now()
      const parsed = parsePayload(TaskMessage, payload)
      if (parsed.ok) runner.receive(parsed.value)
      else log.warn({ error: parsed.error }, 'bad task message dropped')
    } else if (topic === topics.gpuControl(config.gpuId)) {
      const parsed = parsePayload(GpuControl, payload)
      if (!parsed.ok) log.warn({ error: parsed.error }, 'bad control message dropped')
      else if (parsed.value.kind === 'rebirth') presence.birth()
      else runner.control(parsed.value)
    } else if (topic === topics.gpuState(config.gpuId)) {
      presence.onRetained(payload, closing)
    }
  }

  // Every connection attempt is a new epoch, and its will must carry it.
  client.on('reconnect', () => {
    client.options.will = presence.nextEpoch()
  })
  client.on('connect', (connack) => {
    lastOfferAt = performance.now()
    presence.connected(connack.sessionPresent)
    log.info({ epoch: presence.epoch, sessionPresent: connack.sessionPresent }, 'connected')
    const filters = [
      ...adapter.taskTypes.map((type) => topics.offers(type)),
      topics.gpuTasks(config.gpuId),
      topics.gpuControl(config.gpuId),
      topics.gpuState(config.gpuId),
    ]
    // Subscribed before the birth, so whatever the gateway re-publishes in reply reaches us.
    client.subscribe(filters, { qos: 1 }, (err) => {
      if (err) {
        log.error({ err }, 'subscribe failed')
        return
      }
      presence.birth()
      runner.resume()
    })
  })
  // Refused logins retried with backoff; while closing, a late PUBACK after DISCONNECT fails
  // harmlessly ("write after end") and is logged at debug.
  watchMqttLink({ client, log, name: 'bridge', quiet: () => closing })

  const heartbeat = setInterval(() => {
    if (client.connected) presence.heartbeat()
  }, config.heartbeatMs)
  // A resumed session: once no offer has arrived for a while, the broker has delivered what it
  // kept for us, and a `settled` birth asks the gateway for whatever it lost.
  const settle = setInterval(() => {
    if (client.connected && presence.settling && performance.now() - lastOfferAt >= SETTLE_MS) {
      presence.settle()
    }
  }, SETTLE_MS / 4)

  log.info(
    {
      mqttUrl: config.mqttUrl,
      serviceUrl: config.serviceUrl,
      adapter: adapter.name,
      service: readiness.state,
      serviceSecret: config.serviceSecret !== null,
    },
    'bridge started',
  )

  let closed: Promise<void> | undefined
  return {
    gpuId: config.gpuId,
    epoch: () => presence.epoch,
    isConnected: () => client.connected,
    close() {
      closed ??= (async () => {
        closing = true
        clearInterval(heartbeat)
        clearInterval(settle)
        readiness.stop()
        presence.stop()
        await runner.close()
        await presence.offline()
        await endClient(client)
        inbox.close()
        log.info('bridge stopped')
      })()
      return closed
    },
  }
}
