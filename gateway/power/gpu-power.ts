/**
 * One GPU's power as the gateway sees it, from what was asked (start, stop) and what its presence
 * says. Phases: `off`, `booting` (a start was asked for, or it is online with its service still
 * loading), `up` (online and ready: shown `online`, or `idle` while there is nothing to do),
 * `shutting-down` (a stop was asked for; `off` once it goes offline). Durations are relay-clock
 * ms; `since` and `idleSince` are also kept in wall-clock ms for display.
 */
import type { PowerState } from '../../protocol/index.js'

export type PowerPhase = 'off' | 'booting' | 'up' | 'shutting-down'

/** The start request a boot is waiting on. */
export interface PendingBoot {
  readonly requestId: string
  /** Relay ms it was asked at. */
  readonly rcAt: number
  /** Relay ms the first start of this boot was asked at (what its length is measured from). */
  readonly firstAt: number
  /** Starts asked for during this boot (1 at first). */
  readonly attempts: number
  /** Relay ms after `rcAt` it is asked again (the deadline with backoff and jitter). */
  readonly waitMs: number
}

export interface Presence {
  readonly online: boolean
  readonly ready: boolean
  /** The bridge's connection counter (a new one on every connection; negative: not heard from). */
  readonly epoch?: number
}

/** A clock reading in both clocks: relay ms for durations, wall ms for display. */
export interface Stamp {
  readonly rc: number
  readonly wall: number
}

export class GpuPower {
  readonly id: string
  #phase: PowerPhase = 'off'
  #since: Stamp
  #idleSince: Stamp | null = null
  #boot: PendingBoot | null = null
  /** Seen offline since the boot was asked for: a GPU that stayed on did not boot. */
  #cold = false
  /**
   * Relay ms a stop was asked for, until the GPU is seen offline: a machine being switched off
   * takes no new work (it would die with it), also when a start was asked for meanwhile.
   */
  #stopAt: number | null = null
  /** The epoch seen when the stop was asked for: a new one means the machine came back. */
  #stopEpoch: number | undefined = undefined
  /** The stop's deadline passed without a word from the GPU: what it says next settles it. */
  #stopExpired = false
  #epoch: number | undefined = undefined
  lastRequestId: string | null = null

  constructor(id: string, at: Stamp) {
    this.id = id
    this.#since = at
  }

  get phase(): PowerPhase {
    return this.#phase
  }

  get boot(): PendingBoot | null {
    return this.#boot
  }

  get idleSince(): Stamp | null {
    return this.#idleSince
  }

  get since(): Stamp {
    return this.#since
  }

  /** What the view shows. */
  get state(): PowerState {
    if (this.#phase === 'up') return this.#idleSince ? 'idle' : 'online'
    return this.#phase
  }

  /**
   * Follow its presence. Returns the boot that ended when it became ready (to learn its
   * duration), else null: also for a GPU that never went off (a start during a shutdown).
   */
  observe(p: Presence, at: Stamp): PendingBoot | null {
    // The registry shows a GPU it has not heard from since the gateway started with a negative
    // epoch (offline by default): that says nothing about a machine being switched off.
    const epoch = p.epoch !== undefined && p.epoch >= 0 ? p.epoch : undefined
    if (this.#stopAt !== null) {
      if (this.#stopEpoch === undefined) {
        // A stop carried over a gateway restart: wait to hear from the GPU (its epoch), up to the
        // stop's deadline (the manager calls stopExpired() once it has passed).
        if (epoch === undefined && !this.#stopExpired) return null
        this.#stopEpoch = epoch
      }
      // Gone, or back with a new connection (it went and came back between two looks).
      if (!p.online || epoch !== this.#stopEpoch) {
        this.#stopAt = null
        this.#stopExpired = false
        if (this.#phase === 'shutting-down') this.#to('off', at)
      }
    }
    if (this.#epoch !== undefined && epoch !== this.#epoch && this.#phase === 'booting') {
      this.#cold = true
    }
    this.#epoch = epoch
    if (p.online && p.ready) {
      if (this.#stopAt !== null) return null // still draining: see stopDidNotTake
      if (this.#phase === 'shutting-down' || this.#phase === 'up') return null
      const ended = this.#cold ? this.#boot : null
      this.#boot = null
      this.#to('up', at)
      return ended
    }
    if (p.online) {
      // Online, its service still loading: booting (asked for or not).
      if (this.#phase === 'off') this.#to('booting', at)
      return null
    }
    // Offline. A boot asked for goes on (a GPU restarting after a stop is offline for a while).
    if (this.#phase === 'booting') this.#cold = true
    if (this.#phase === 'up' || this.#phase === 'shutting-down') this.#to('off', at)
    else if (this.#phase === 'booting' && this.#boot === null) this.#to('off', at)
    return null
  }

  /** Whether its bridge has been heard from (an epoch) since the gateway started. */
  get heard(): boolean {
    return this.#epoch !== undefined
  }

  /** A carried stop's deadline passed and the GPU was never heard from: it has gone. */
  stopExpired(): void {
    this.#stopExpired = true
  }

  /** False while it is being switched off (a stop asked for, not yet seen offline). */
  get takesWork(): boolean {
    return this.#stopAt === null && this.#phase !== 'shutting-down'
  }

  /** Relay ms the stop it is draining for was asked at; null: none. */
  get stopAt(): number | null {
    return this.#stopAt
  }

  /**
   * A stop that went through but left the GPU online and ready past the deadline (no agent
   * acted on the message, the provider ignored it): up again, taking work, its idle window afresh.
   */
  stopDidNotTake(at: Stamp): void {
    this.#stopAt = null
    this.#stopExpired = false
    this.#boot = null
    this.#to('up', at)
  }

  /** While up: idle from now on when nothing is to do, else busy. */
  setIdle(idle: boolean, at: Stamp): void {
    if (this.#phase !== 'up' || !idle) this.#idleSince = null
    else this.#idleSince ??= at
  }

  /** `carried`: a boot from before a restart (it is learned only if seen offline from now on). */
  started(boot: PendingBoot, at: Stamp, carried = false): void {
    this.lastRequestId = boot.requestId
    // A retry of the same boot keeps its since.
    if (this.#phase !== 'booting') {
      this.#cold = this.#phase === 'off' && !carried
      this.#to('booting', at)
    }
    this.#boot = boot
  }

  /** `carriedAt`: a stop from before a gateway restart, asked at that relay ms. */
  stopping(requestId: string, at: Stamp, carriedAt?: number): void {
    this.lastRequestId = requestId
    this.#boot = null
    this.#stopAt = carriedAt ?? at.rc
    this.#stopEpoch = carriedAt === undefined ? this.#epoch : undefined
    this.#to('shutting-down', at)
  }

  /** A stop that failed: up again (if it still is), its idle window starting afresh. */
  stopFailed(at: Stamp): void {
    this.#stopAt = null
    if (this.#phase !== 'shutting-down') return
    this.#to('up', at)
  }

  /** A boot nobody needs any more (the queue emptied) and that never came: off. */
  giveUp(at: Stamp): void {
    this.#boot = null
    this.#to('off', at)
  }

  #to(phase: PowerPhase, at: Stamp): void {
    this.#phase = phase
    this.#since = at
    this.#idleSince = null
  }
}
