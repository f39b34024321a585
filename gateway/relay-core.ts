/**
 * The gateway's parts wired together around one SQLite database and one MQTT client: presence,
 * dispatch, bridge events, the birth reconcile, the clocks, and the views and actions the HTTP
 * API uses. No I/O of its own beyond what those parts do.
 */
import type { MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import { AdminTopics } from './admin-topics.js'
import { LearnedBoots, bootsFrom, type BootHistory } from './boot-history.js'
import { BridgeEvents } from './bridge-events.js'
import { Clocks } from './clocks.js'
import type { GatewayConfig } from './config.js'
import type { Db } from './db.js'
import { Dispatcher } from './dispatcher.js'
import { EstimateAccuracy } from './estimate-accuracy.js'
import { EstimateReads } from './estimate-store.js'
import type { FilePool } from './file-pool.js'
import { GpuRegistry } from './gpu-registry.js'
import { reconcileBirth } from './reconcile.js'
import { HandOvers } from './hand-overs.js'
import { RelayClock } from './relay-clock.js'
import { TaskActions } from './task-actions.js'
import { TaskLifecycle } from './task-lifecycle.js'
import { TaskService } from './task-service.js'
import { TaskOutbox } from './task-outbox.js'
import { TaskStore } from './task-store.js'
import { GpuState, parsePayload, type Topics } from '../protocol/index.js'

export interface RelayCore {
  readonly store: TaskStore
  /** Every write of a task row (task-lifecycle.ts). */
  readonly lifecycle: TaskLifecycle
  /** The task event stream (task-outbox.ts): `after(id)` to resume, `subscribe` for what comes. */
  readonly outbox: TaskOutbox
  readonly views: TaskService
  readonly actions: TaskActions
  readonly dispatcher: Dispatcher
  /** GPU presence (the HTTP API reports the online capacity). */
  readonly registry: GpuRegistry
  /** Result hand-overs under way (the result route marks them, the clocks hold for them). */
  readonly handOvers: HandOvers
  /** The relay clock's reading (relay-clock.ts), ms: what durations are measured on. */
  readonly relay: () => number
  /** How good past start estimates were (the admin's estimates route). */
  readonly estimateAccuracy: EstimateAccuracy
  /** An MQTT message on a subscribed topic; never throws. */
  onMessage(topic: string, payload: Buffer, retained: boolean): void
  /** Once a second: heartbeats and clocks. */
  tick(): void
  close(): void
}

export interface RelayCoreDeps {
  readonly db: Db
  readonly pool: FilePool
  readonly client: MqttClient
  readonly topics: Topics
  readonly log: Logger
  /** Wall-clock ms (display times). */
  readonly now: () => number
  /** The monotonic clock the relay clock advances by (default `performance.now`). */
  readonly monotonic?: () => number
  /** Boot times measured by the power controller; else learned from presence (boot-history.ts). */
  readonly bootHistory?: BootHistory
  /** False for a GPU being switched off (power on demand): its claims are refused. */
  readonly takesWork?: (gpuId: string) => boolean
}

export function createRelayCore(config: GatewayConfig, deps: RelayCoreDeps): RelayCore {
  const { db, pool, client, topics, log, now } = deps
  // Durations are measured on the relay clock, never on the wall clock (docs/design.md §3.8).
  const clock = new RelayClock(db, deps.monotonic)
  const relay = (): number => clock.now()
  const late: { views?: TaskService; dispatcher?: Dispatcher; registry?: GpuRegistry } = {}
  const outbox = new TaskOutbox(db, (err) => {
    log.error({ err }, 'task event subscriber failed')
  })
  const store = new TaskStore({
    db,
    relay,
    typesOf: (gpuId) => late.registry?.typesOf(gpuId) ?? [],
  })
  const lifecycle = new TaskLifecycle({ db, outbox, now, relay, log })
  const learnedBoots = new LearnedBoots(relay)
  const admin = new AdminTopics({
    client,
    topics,
    log,
    outbox,
    store,
    queue: () => late.views?.queue() ?? { queued: 0, processing: 0, gpusOnline: 0, etaSeconds: 0 },
  })
  const registry = new GpuRegistry({
    db,
    knownIds: config.gpuIds,
    log,
    events: {
      onOnline: (birth) => {
        const dispatcher = late.dispatcher
        if (dispatcher) reconcileBirth({ store, dispatcher, log }, birth)
        admin.queueChanged()
      },
      onPresumedOnline: (gpuId) => {
        late.dispatcher?.requestRebirth(gpuId)
        admin.queueChanged()
      },
      // Nothing moves: there is no per-GPU queue (its running tasks: birth reconcile, clocks).
      onOffline: () => {
        admin.queueChanged()
      },
      elapsed: relay,
      onReadiness: (gpuId, seen) => {
        learnedBoots.note(gpuId, seen)
      },
    },
  })
  late.registry = registry
  const dispatcher = new Dispatcher({
    store,
    lifecycle,
    registry,
    client,
    topics,
    log,
    relay,
    maxAttempts: config.maxAttempts,
  })
  const views = new TaskService({
    store,
    registry,
    bootEstimateS: config.bootEstimateS,
    runEstimateS: config.runEstimateS,
    waitingTexts: config.waitingTexts,
    now,
    estimates: new EstimateReads(db),
    boots: bootsFrom(deps.bootHistory, learnedBoots),
    bootElapsedMs: () => deps.bootHistory?.bootElapsedMs?.() ?? null,
  })
  late.views = views
  late.dispatcher = dispatcher
  const events = new BridgeEvents({
    store,
    lifecycle,
    registry,
    pool,
    dispatcher,
    log,
    ...(deps.takesWork ? { takesWork: deps.takesWork } : {}),
  })
  const actions = new TaskActions({
    store,
    lifecycle,
    pool,
    dispatcher,
    views,
    log,
    now,
    queueTtlMs: config.queueTtlMs,
  })
  const handOvers = new HandOvers(relay)
  const clocks = new Clocks({
    handOvers,
    store,
    lifecycle,
    outbox,
    pool,
    dispatcher,
    log,
    now,
    relay,
    execTimeoutMs: config.execTimeoutMs,
    stallTimeoutMs: config.stallTimeoutMs,
    retentionMs: config.retentionMs,
  })

  return {
    store,
    lifecycle,
    outbox,
    handOvers,
    estimateAccuracy: new EstimateAccuracy(db),
    views,
    actions,
    dispatcher,
    registry,
    relay,
    onMessage(topic, payload, retained) {
      const parsed = topics.parseGpuTopic(topic)
      if (!parsed) return
      // MQTT handlers never throw (STYLE): a failure is logged and the message dropped.
      try {
        if (parsed.channel === 'events') {
          events.onEventMessage(parsed.gpuId, payload)
        } else if (parsed.channel === 'state') {
          const state = parsePayload(GpuState, payload)
          if (!state.ok) {
            log.warn({ gpuId: parsed.gpuId, error: state.error }, 'bad GPU state dropped')
            return
          }
          registry.apply(parsed.gpuId, state.value, { now: now(), retained })
        }
      } catch (err) {
        log.error({ err, topic }, 'MQTT message handling failed')
      }
    },
    tick() {
      try {
        registry.sweep(now())
        clocks.tick()
        dispatcher.tick()
      } catch (err) {
        log.error({ err }, 'tick failed')
      }
      try {
        clock.tick()
      } catch (err) {
        // A full disk, say: the clock runs on in memory and is saved at a later tick.
        log.error({ err }, 'relay clock not saved')
      }
    },
    close() {
      admin.close()
      lifecycle.flushDeferred()
      try {
        clock.persist()
      } catch (err) {
        log.error({ err }, 'relay clock not saved at shutdown')
      }
    },
  }
}
