/**
 * The bridge's presence on `relay/gpus/{gpuId}/state` (docs/design.md §3.4): a new epoch for every
 * connection (kept on disk), a retained Last Will carrying it, a birth listing what the inbox
 * holds, heartbeats, and a graceful "offline" on shutdown. If a will or state of an older
 * connection ends up retained over ours (a late will), ours is put back.
 */
import type { IClientOptions, MqttClient } from 'mqtt'
import type { Logger } from 'pino'
import type { Inbox } from './inbox.js'
import { errorMessage } from '../lib/errors.js'
import { publish } from '../lib/mqtt.js'
import { RELAY_VERSION } from '../lib/version.js'
import {
  GpuState,
  PROTOCOL_VERSION,
  encodePayload,
  parsePayload,
  type ServiceReadiness,
  type TaskType,
} from '../protocol/index.js'

export interface PresenceDeps {
  readonly inbox: Inbox
  readonly stateTopic: string
  readonly capacity: number
  readonly heartbeatMs: number
  readonly adapterName: string
  /** The task types the adapter runs: declared by every birth and heartbeat. */
  readonly types: readonly TaskType[]
  /** The GPU service's readiness now: carried by every birth and heartbeat. */
  readonly readiness: () => ServiceReadiness
  readonly now: () => number
  readonly log: Logger
}

/** Put our state back at most this often (later ones wait for the interval, none is dropped). */
const RESTORE_MIN_INTERVAL_MS = 1_000

export class Presence {
  readonly #d: PresenceDeps
  #client: MqttClient | undefined
  #epoch: number
  #since: number
  /** Whether the broker kept our session at this connection (CONNACK sessionPresent). */
  #session: 'new' | 'resumed' | 'settled' = 'new'
  #lastRestore = -Infinity
  #restoreTimer: NodeJS.Timeout | undefined

  constructor(deps: PresenceDeps) {
    this.#d = deps
    this.#epoch = deps.inbox.bumpEpoch(deps.now())
    this.#since = deps.now()
  }

  get epoch(): number {
    return this.#epoch
  }

  attach(client: MqttClient): void {
    this.#client = client
  }

  /** The will for the connection about to be made. */
  will(): NonNullable<IClientOptions['will']> {
    return {
      topic: this.#d.stateTopic,
      payload: encodePayload({ v: PROTOCOL_VERSION, online: false, epoch: this.#epoch }),
      qos: 1,
      retain: true,
    }
  }

  /** Before every reconnection attempt: a new epoch, and the will that carries it. */
  nextEpoch(): NonNullable<IClientOptions['will']> {
    this.#epoch = this.#d.inbox.bumpEpoch(this.#d.now())
    return this.will()
  }

  /**
   * `sessionPresent` from the CONNACK: a resumed session still holds the offers published while
   * we were away, so the gateway sends nothing at our birth (docs/design.md §3.3).
   */
  connected(sessionPresent: boolean): void {
    this.#since = this.#d.now()
    this.#session = sessionPresent ? 'resumed' : 'new'
  }

  /** A resumed session whose birth has not been followed by a `settled` one yet. */
  get settling(): boolean {
    return this.#session === 'resumed'
  }

  /**
   * The offers the broker kept for a resumed session have stopped arriving: one more birth, marked
   * `settled`, lists what the inbox holds now, and the gateway sends what is still missing (what
   * the broker lost while keeping the session), docs/design.md §3.3.
   */
  settle(): void {
    if (this.#session !== 'resumed') return
    this.#session = 'settled'
    this.birth()
  }

  /** A birth lists what the inbox holds and the session's fate, for the gateway's reconcile. */
  birth(): void {
    this.#send({
      ...this.#state('birth'),
      holding: this.#d.inbox.holding(),
      session: this.#session,
    })
  }

  heartbeat(): void {
    this.#send(this.#state('heartbeat'))
  }

  /** Our own state topic as the broker shows it. */
  onRetained(payload: Buffer, closing: boolean): void {
    const parsed = parsePayload(GpuState, payload)
    if (!parsed.ok || closing || this.#client?.connected !== true) return
    const stale = !parsed.value.online || parsed.value.epoch < this.#epoch
    if (!stale || this.#restoreTimer) return
    this.#d.log.info({ shownEpoch: parsed.value.epoch, epoch: this.#epoch }, 'restoring our state')
    const wait = this.#lastRestore + RESTORE_MIN_INTERVAL_MS - this.#d.now()
    this.#restoreTimer = setTimeout(
      () => {
        this.#restoreTimer = undefined
        this.#lastRestore = this.#d.now()
        this.heartbeat()
      },
      // Never longer than the interval: a wall clock stepped back cannot hold the restore.
      Math.min(RESTORE_MIN_INTERVAL_MS, Math.max(0, wait)),
    )
  }

  stop(): void {
    clearTimeout(this.#restoreTimer)
    this.#restoreTimer = undefined
  }

  /** Graceful shutdown: say so (the will is only for connections that die). */
  async offline(): Promise<void> {
    const client = this.#client
    if (client?.connected !== true) return
    const payload = encodePayload({
      v: PROTOCOL_VERSION,
      online: false,
      epoch: this.#epoch,
      reason: 'shutdown',
    })
    await Promise.race([
      publish(client, { topic: this.#d.stateTopic, payload, qos: 1, retain: true }).catch(
        () => undefined,
      ),
      new Promise((resolve) => setTimeout(resolve, 2_000)),
    ])
  }

  #state(reason: 'birth' | 'heartbeat'): GpuState {
    return {
      v: PROTOCOL_VERSION,
      online: true,
      epoch: this.#epoch,
      since: new Date(this.#since).toISOString(),
      capacity: this.#d.capacity,
      adapter: this.#d.adapterName,
      version: RELAY_VERSION,
      heartbeatMs: this.#d.heartbeatMs,
      reason,
      ready: this.#d.readiness() === 'ready',
      service: this.#d.readiness(),
      types: [...this.#d.types],
    }
  }

  #send(state: GpuState): void {
    const client = this.#client
    if (!client) return
    publish(client, {
      topic: this.#d.stateTopic,
      payload: encodePayload(state),
      qos: 1,
      retain: true,
    }).catch((err: unknown) => this.#d.log.debug({ err: errorMessage(err) }, 'state not published'))
  }
}
