/**
 * startBridge: the GPU machine's MQTT client (DESIGN §2, §3). A fixed client id and
 * clean-session=false, so tasks published while the GPU was off wait in the broker; a retained
 * Last Will `{online:false, epoch}`; a birth with what the inbox holds on every connection (a new
 * epoch each time); heartbeats; task messages stored durably before they are acknowledged.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { GpuAdapter } from './adapters/types.js'
import { runServerAdapter } from './adapters/run-server.js'
import type { BridgeConfig } from './config.js'
import { GatewayFiles } from './gateway-files.js'
import { Inbox } from './inbox.js'
import { Runner } from './runner.js'
import { errorMessage } from '../lib/errors.js'
import { endClient, publish } from '../lib/mqtt.js'
import { RELAY_VERSION } from '../lib/version.js'
import {
  ControlMessage,
  GpuState,
  PROTOCOL_VERSION,
  TaskMessage,
  encodePayload,
  parsePayload,
  topicsFor,
  type BridgeEvent,
} from '../protocol/index.js'

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
  const inbox = new Inbox(join(config.dataDir, 'bridge.sqlite'))
  const adapter = deps.adapter ?? runServerAdapter(config.serviceUrl)
  const topics = topicsFor(config.topicRoot)
  const stateTopic = topics.gpuState(config.gpuId)

  let epoch = inbox.bumpEpoch()
  let connectedSince = now()
  const will = (e: number): NonNullable<IClientOptions['will']> => ({
    topic: stateTopic,
    payload: encodePayload({ v: PROTOCOL_VERSION, online: false, epoch: e }),
    qos: 1,
    retain: true,
  })
  const client: MqttClient = mqtt.connect(config.mqttUrl, {
    clientId: `gpu-relay-bridge-${config.gpuId}`,
    clean: false,
    keepalive: config.keepaliveS,
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
    will: will(epoch),
  })

  const send = (event: BridgeEvent): void => {
    publish(client, topics.gpuEvents(config.gpuId), encodePayload(event), { qos: 1 }).catch(
      (err: unknown) => {
        log.debug(
          { err: errorMessage(err), kind: event.kind, taskId: event.taskId },
          'event not published',
        )
      },
    )
  }
  const runner = new Runner({
    adapter,
    files: new GatewayFiles(config.gatewayUrl),
    inbox,
    log,
    now,
    pollMs: config.pollMs,
    progressIntervalMs: config.progressIntervalMs,
    serviceDownMs: config.serviceDownMs,
    capacity: config.capacity,
    claimRetryMs: config.claimRetryMs,
    resendMs: config.resendMs,
    send,
    isConnected: () => client.connected,
  })

  const stateMessage = (reason: 'birth' | 'heartbeat'): GpuState => ({
    v: PROTOCOL_VERSION,
    online: true,
    epoch,
    since: new Date(connectedSince).toISOString(),
    capacity: config.capacity,
    adapter: adapter.name,
    version: RELAY_VERSION,
    heartbeatMs: config.heartbeatMs,
    reason,
    holding: inbox.holding(),
  })
  const announce = (reason: 'birth' | 'heartbeat'): void => {
    publish(client, stateTopic, encodePayload(stateMessage(reason)), {
      qos: 1,
      retain: true,
    }).catch((err: unknown) => log.debug({ err: errorMessage(err) }, 'state not published'))
  }

  // Acknowledge a message only once it is stored (DESIGN §3.5): mqtt.js sends PUBACK after this
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

  function route(topic: string, payload: Buffer): void {
    if (topic === topics.gpuTasks(config.gpuId)) {
      const parsed = parsePayload(TaskMessage, payload)
      if (parsed.ok) runner.receive(parsed.value)
      else log.warn({ error: parsed.error }, 'bad task message dropped')
    } else if (topic === topics.gpuControl(config.gpuId)) {
      const parsed = parsePayload(ControlMessage, payload)
      if (parsed.ok) runner.control(parsed.value)
      else log.warn({ error: parsed.error }, 'bad control message dropped')
    } else if (topic === stateTopic) {
      // A will or state of an older connection retained over ours: put ours back.
      const parsed = parsePayload(GpuState, payload)
      if (
        !closing &&
        client.connected &&
        (!parsed.ok || !parsed.value.online || parsed.value.epoch !== epoch)
      ) {
        log.info(
          { retainedEpoch: parsed.ok ? parsed.value.epoch : null, epoch },
          'restoring our retained state',
        )
        announce('heartbeat')
      }
    }
  }

  // Every connection attempt is a new epoch, and its will must carry it.
  client.on('reconnect', () => {
    epoch = inbox.bumpEpoch()
    client.options.will = will(epoch)
  })
  client.on('connect', (connack) => {
    connectedSince = now()
    log.info(
      { epoch, sessionPresent: connack.sessionPresent, holding: inbox.holding().length },
      'connected to broker',
    )
    const filters = [topics.gpuTasks(config.gpuId), topics.gpuControl(config.gpuId), stateTopic]
    client.subscribe(filters, { qos: 1 }, (err) => {
      if (err) {
        log.error({ err }, 'subscribe failed')
        return
      }
      announce('birth')
      runner.resume()
    })
  })
  client.on('offline', () => log.warn({ mqttUrl: config.mqttUrl }, 'broker unreachable; retrying'))
  client.on('error', (err) => log.warn({ err: err.message }, 'MQTT client error'))

  let closing: Promise<void> | undefined
  const heartbeat = setInterval(() => {
    if (client.connected) announce('heartbeat')
  }, config.heartbeatMs)

  log.info(
    { mqttUrl: config.mqttUrl, serviceUrl: config.serviceUrl, adapter: adapter.name, epoch },
    'bridge started',
  )

  return {
    gpuId: config.gpuId,
    epoch: () => epoch,
    isConnected: () => client.connected,
    close() {
      closing ??= (async () => {
        clearInterval(heartbeat)
        runner.close()
        if (client.connected) {
          const offline = encodePayload({
            v: PROTOCOL_VERSION,
            online: false,
            epoch,
            reason: 'shutdown',
          })
          await Promise.race([
            publish(client, stateTopic, offline, { qos: 1, retain: true }).catch(() => undefined),
            new Promise((resolve) => setTimeout(resolve, 2_000)),
          ])
        }
        await endClient(client)
        inbox.close()
        log.info('bridge stopped')
      })()
      return closing
    },
  }
}
