/**
 * GPU presence with epochs (docs/design.md §3.4). A bridge's birth and heartbeats carry its epoch; a
 * message with an older epoch than the last birth is stale and ignored, so a late Last Will of a
 * previous connection cannot mark a reconnected GPU offline. Three missed heartbeats also count
 * as offline.
 */
import type { Statement } from 'better-sqlite3'
import type { Logger } from 'pino'
import type { Db } from './db.js'
import {
  DEFAULT_TASK_TYPE,
  type GpuState,
  type Holding,
  type ServiceReadiness,
  type TaskType,
} from '../protocol/index.js'

export interface GpuPresence {
  readonly id: string
  readonly online: boolean
  readonly epoch: number
  /** ms: since when online (or offline). */
  readonly since: number
  readonly lastSeen: number
  readonly capacity: number
  readonly heartbeatMs: number
  /** Online and its GPU service can take work (the bridge's `ready`). */
  readonly ready: boolean
  /** The GPU service as the bridge last reported it; null before any report. */
  readonly service: ServiceReadiness | null
  /** The task types it runs (its adapter's capabilities; `['heygem']` until it says). */
  readonly types: readonly TaskType[]
  /**
   * Its last birth said whether the broker kept its session, so it subscribes to the offers of
   * its types; a bridge whose birth does not say is sent its offers on its own tasks topic.
   */
  readonly pullsOffers: boolean
}

/** A live birth, for the reconcile (docs/design.md §3.3). */
export interface Birth {
  readonly gpuId: string
  /** What the bridge holds right now. */
  readonly holding: readonly Holding[]
  readonly epoch: number
  /** CONNACK sessionPresent as the bridge saw it; undefined: a bridge that does not say. */
  readonly session: 'new' | 'resumed' | 'settled' | undefined
  readonly types: readonly TaskType[]
}

export interface RegistryEvents {
  /** A live birth: what the bridge holds right now, for the reconcile (docs/design.md §3.3). */
  onOnline(birth: Birth): void
  /** Online, but we did not see its birth: ask for one. */
  onPresumedOnline(gpuId: string): void
  onOffline(gpuId: string, reason: string): void
  /**
   * The clock heartbeat gaps are measured on (the relay clock, docs/design.md §3.8), so a step of
   * the wall clock marks no GPU offline; unset: the `now` given to apply and sweep.
   */
  readonly elapsed?: () => number
  /** After every change of a GPU's presence: online, and whether it can take work (boot-history.ts). */
  onReadiness?(gpuId: string, seen: { readonly online: boolean; readonly ready: boolean }): void
}

export type StateVerdict = 'birth' | 'presumed' | 'heartbeat' | 'offline' | 'stale'

const DEFAULT_HEARTBEAT_MS = 15_000
const DEFAULT_TYPES: readonly TaskType[] = [DEFAULT_TASK_TYPE]
/** A recorded epoch this far ahead of the gateway's clock came from a clock that was wrong. */
const EPOCH_AHEAD_MS = 24 * 60 * 60 * 1000

export class GpuRegistry {
  readonly #gpus = new Map<string, GpuPresence>()
  readonly #save: Statement<[string, number, number, number, number, number]>
  readonly #log: Logger
  readonly #events: RegistryEvents
  /** When each GPU was last heard from, on the `elapsed` clock (in memory: a restart starts afresh). */
  readonly #heard = new Map<string, number>()

  constructor(o: {
    readonly db: Db
    readonly knownIds: readonly string[]
    readonly log: Logger
    readonly events: RegistryEvents
  }) {
    const { db, knownIds, log, events } = o
    this.#save = db.prepare(
      `INSERT INTO gpus (id, epoch, online, since, last_seen, capacity) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, online = excluded.online,
         since = excluded.since, last_seen = excluded.last_seen, capacity = excluded.capacity`,
    )
    this.#log = log
    this.#events = events
    // Until a bridge speaks, nothing is online; remember epochs so stale wills stay stale.
    const rows = db
      .prepare<
        [],
        { id: string; epoch: number; since: number; last_seen: number; capacity: number }
      >('SELECT id, epoch, since, last_seen, capacity FROM gpus')
      .all()
    for (const row of rows) {
      this.#gpus.set(row.id, {
        id: row.id,
        online: false,
        epoch: row.epoch,
        since: row.last_seen,
        lastSeen: row.last_seen,
        capacity: row.capacity,
        heartbeatMs: DEFAULT_HEARTBEAT_MS,
        ready: false,
        service: null,
        types: DEFAULT_TYPES,
        pullsOffers: false,
      })
    }
    for (const id of knownIds) {
      if (!this.#gpus.has(id)) {
        this.#gpus.set(id, {
          id,
          online: false,
          epoch: -1,
          since: 0,
          lastSeen: 0,
          capacity: 1,
          heartbeatMs: DEFAULT_HEARTBEAT_MS,
          ready: false,
          service: null,
          types: DEFAULT_TYPES,
          pullsOffers: false,
        })
      }
    }
  }

  all(): GpuPresence[] {
    return [...this.#gpus.values()]
  }

  online(): GpuPresence[] {
    return this.all().filter((g) => g.online)
  }

  /** Online with a GPU service that can take work: what estimates count and work goes to. */
  ready(): GpuPresence[] {
    return this.all().filter((g) => g.online && g.ready)
  }

  get(id: string): GpuPresence | undefined {
    return this.#gpus.get(id)
  }

  /**
   * Apply a `relay/gpus/{id}/state` message. `retained`: a stored copy the broker replayed, not
   * the bridge speaking now. Only a live birth is reconciled; a GPU seen online any other way
   * (a retained state after our restart, a heartbeat after a gap or with a new epoch) is online
   * at once but asked for a fresh birth.
   */
  apply(
    gpuId: string,
    state: GpuState,
    at: { readonly now: number; readonly retained: boolean },
  ): StateVerdict {
    const { now, retained } = at
    const known = this.#gpus.get(gpuId)
    if (known && state.epoch < known.epoch) {
      // Epochs are at least the bridge's clock in ms. One recorded while that clock was far ahead
      // would make every later epoch of a re-installed bridge look stale for good: a live birth
      // resets an epoch that is that far ahead of our own clock (a will or a retained copy never).
      const reset =
        !retained && state.online && state.reason === 'birth' && known.epoch > now + EPOCH_AHEAD_MS
      if (!reset) {
        this.#log.info(
          { gpuId, epoch: state.epoch, current: known.epoch, online: state.online },
          'stale GPU state ignored',
        )
        return 'stale'
      }
      this.#log.warn(
        { gpuId, epoch: state.epoch, recorded: known.epoch },
        'GPU epoch reset: the recorded one is far ahead of the clock',
      )
    }
    if (!state.online) {
      if (known && !known.online && state.epoch === known.epoch) return 'stale'
      this.#set(
        gpuId,
        { online: false, epoch: state.epoch, since: now, lastSeen: now, ready: false },
        known,
      )
      this.#log.warn({ gpuId, epoch: state.epoch, reason: state.reason ?? 'will' }, 'GPU offline')
      this.#events.onOffline(gpuId, state.reason ?? 'will')
      return 'offline'
    }
    const wasOnline = known?.online === true && state.epoch === known.epoch
    this.#heard.set(gpuId, this.#events.elapsed?.() ?? now)
    this.#set(
      gpuId,
      {
        online: true,
        epoch: state.epoch,
        since: wasOnline ? known.since : now,
        lastSeen: now,
        capacity: state.capacity ?? known?.capacity ?? 1,
        heartbeatMs: state.heartbeatMs ?? known?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
        // Bridges from before readiness existed say nothing: they are ready when online.
        ready: state.ready ?? true,
        service: state.service ?? null,
        types: state.types ?? known?.types ?? DEFAULT_TYPES,
        ...(!retained && state.reason === 'birth'
          ? { pullsOffers: state.session !== undefined }
          : {}),
      },
      known,
    )
    if (wasOnline && known.ready !== (state.ready ?? true)) {
      this.#log.info(
        { gpuId, ready: state.ready ?? true, service: state.service },
        'GPU service readiness changed',
      )
    }
    if (!retained && state.reason === 'birth') {
      this.#log.info(
        {
          gpuId,
          epoch: state.epoch,
          holding: state.holding?.length ?? 0,
          ready: state.ready ?? true,
          service: state.service,
        },
        'GPU online',
      )
      this.#events.onOnline({
        gpuId,
        holding: state.holding ?? [],
        epoch: state.epoch,
        session: state.session,
        types: state.types ?? DEFAULT_TYPES,
      })
      return 'birth'
    }
    if (wasOnline) return 'heartbeat'
    this.#log.info(
      { gpuId, epoch: state.epoch, retained },
      'GPU online without a birth; asking for one',
    )
    this.#events.onPresumedOnline(gpuId)
    return 'presumed'
  }

  /** Mark GPUs whose heartbeats stopped (3 intervals) offline. */
  sweep(now: number): void {
    const elapsed = this.#events.elapsed?.() ?? now
    for (const gpu of this.#gpus.values()) {
      const heard = this.#heard.get(gpu.id) ?? elapsed
      if (gpu.online && elapsed - heard > 3 * gpu.heartbeatMs) {
        this.#set(gpu.id, { online: false, since: now, ready: false }, gpu)
        this.#log.warn(
          { gpuId: gpu.id, lastSeen: new Date(gpu.lastSeen).toISOString() },
          'GPU offline (heartbeat missed)',
        )
        this.#events.onOffline(gpu.id, 'heartbeat-missed')
      }
    }
  }

  /** The task types `gpuId` runs. */
  typesOf(gpuId: string): readonly TaskType[] {
    return this.#gpus.get(gpuId)?.types ?? DEFAULT_TYPES
  }

  #set(
    gpuId: string,
    patch: Partial<Omit<GpuPresence, 'id'>>,
    known: GpuPresence | undefined,
  ): void {
    const next: GpuPresence = {
      id: gpuId,
      online: patch.online ?? known?.online ?? false,
      epoch: patch.epoch ?? known?.epoch ?? 0,
      since: patch.since ?? known?.since ?? 0,
      lastSeen: patch.lastSeen ?? known?.lastSeen ?? 0,
      capacity: patch.capacity ?? known?.capacity ?? 1,
      heartbeatMs: patch.heartbeatMs ?? known?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
      ready: patch.ready ?? known?.ready ?? false,
      service: patch.service ?? known?.service ?? null,
      types: patch.types ?? known?.types ?? DEFAULT_TYPES,
      pullsOffers: patch.pullsOffers ?? known?.pullsOffers ?? false,
    }
    this.#gpus.set(gpuId, next)
    this.#save.run(gpuId, next.epoch, next.online ? 1 : 0, next.since, next.lastSeen, next.capacity)
    this.#events.onReadiness?.(gpuId, { online: next.online, ready: next.ready })
  }
}
