/**
 * Decides when to ask for power (README "GPU power on demand"), from the task events, GPU presence
 * and the gateway's tick:
 * - a task is queued and no GPU is online or booting → start one (once per boot);
 * - a GPU asked to start is not ready by the boot deadline → ask again, backing off (2×, 4×, 8×),
 *   while a task still waits; else the boot is given up;
 * - the queue empty, nothing running, no submit within a minute (or the idle window when shorter)
 *   and a GPU idle for the idle window → stop it, once;
 * - a submit while a GPU shuts down asks for it again.
 * Durations are measured on the relay clock. Only the GPUs the relay may power are asked for;
 * every GPU seen is shown. With `auto` off only an admin's requests are made.
 */
import type { PowerAction, PowerReason } from '../../protocol/index.js'
import { GpuPower, type Presence, type Stamp } from './gpu-power.js'
import type { LastRequest } from './power-store.js'

/** What the manager reads of the relay (the registry and the task store, in the gateway). */
export interface PowerInputs {
  /** Every GPU with its presence. */
  gpus(): readonly (Presence & { readonly id: string })[]
  /** Tasks queued and running, all GPUs together. */
  counts(): { readonly queued: number; readonly processing: number }
}

export interface PowerManagerDeps {
  readonly inputs: PowerInputs
  /** The GPUs the relay may power, in the order they are woken. */
  readonly managed: readonly string[]
  readonly auto: boolean
  readonly idleMs: number
  readonly bootDeadlineMs: number
  /** Make a request (power-requester.ts); returns its id. */
  readonly request: (r: { gpuId: string; action: PowerAction; reason: PowerReason }) => string
  /** A start's boot ended: its GPU is ready after `bootMs` (relay ms). */
  readonly onReady: (r: { requestId: string; bootMs: number; at: number }) => void
  readonly relay: () => number
  readonly now: () => number
  /** 0 ≤ x < 1, for the jitter of retries (default Math.random). */
  readonly random?: () => number
  /**
   * After a restart: each managed GPU's newest request, so a boot or shutdown under way goes on
   * (no second start for the same boot; its deadline still counts from its request).
   */
  readonly lastRequestOf?: (gpuId: string) => LastRequest | undefined
}

/** A submit this recent holds off a stop. */
const RECENT_SUBMIT_MS = 60_000
const MAX_BACKOFF = 8

export class PowerManager {
  readonly #d: PowerManagerDeps
  readonly #gpus = new Map<string, GpuPower>()
  #lastSubmit = -Infinity

  constructor(deps: PowerManagerDeps) {
    this.#d = deps
    const at = this.#stamp()
    for (const id of deps.managed) {
      const gpu = new GpuPower(id, at)
      this.#gpus.set(id, gpu)
      const last = deps.lastRequestOf?.(id)
      if (last?.action === 'start' && !last.ready) {
        const boot = { requestId: last.requestId, rcAt: last.rcAt, firstAt: last.rcAt, attempts: 1 }
        gpu.started({ ...boot, waitMs: deps.bootDeadlineMs }, at, true)
      } else if (
        last?.action === 'stop' &&
        last.outcome !== 'failed' &&
        last.outcome !== 'timeout'
      ) {
        gpu.stopping(last.requestId, at, last.rcAt) // settled once the GPU is heard from
      }
    }
  }

  /** Every GPU's power, managed ones first. */
  all(): readonly GpuPower[] {
    return [...this.#gpus.values()]
  }

  get(gpuId: string): GpuPower | undefined {
    return this.#gpus.get(gpuId)
  }

  /** Whether the GPU may be granted a claim: not while it is being switched off. */
  takesWork(gpuId: string): boolean {
    return this.#gpus.get(gpuId)?.takesWork ?? true
  }

  managed(gpuId: string): boolean {
    return this.#d.managed.includes(gpuId)
  }

  /** A task was submitted (or requeued): it holds off a stop, and may need a GPU now. */
  submitted(): void {
    this.#lastSubmit = this.#d.relay()
    this.tick()
  }

  /** Once a second, and after each task event. */
  tick(): void {
    const at = this.#stamp()
    const counts = this.#d.inputs.counts()
    this.#observe(at, counts.queued + counts.processing === 0)
    if (!this.#d.auto) return
    if (counts.queued > 0) {
      this.#wake(at)
      this.#retryBoots(at)
    } else {
      this.#abandonBoots(at)
    }
    if (counts.queued === 0 && counts.processing === 0) this.#stopIdle(at)
  }

  /** An admin's request. */
  manual(gpuId: string, action: PowerAction): string {
    const gpu = this.#gpuOf(gpuId)
    const at = this.#stamp()
    return action === 'start' ? this.#start(gpu, 'manual', at) : this.#stop(gpu, 'manual', at)
  }

  /** A stop that did not go through: the GPU counts as up again. */
  stopFailed(gpuId: string, requestId: string): void {
    const gpu = this.#gpus.get(gpuId)
    if (gpu?.lastRequestId === requestId) gpu.stopFailed(this.#stamp())
  }

  #observe(at: Stamp, idle: boolean): void {
    for (const p of this.#d.inputs.gpus()) {
      const gpu = this.#gpuOf(p.id)
      const stopAt = gpu.stopAt
      if (stopAt !== null && at.rc - stopAt >= this.#d.bootDeadlineMs) {
        // Still up and ready that long after the stop: it did not take. Never heard from since
        // a restart that long: it has gone.
        if (p.online && p.ready && gpu.heard) gpu.stopDidNotTake(at)
        else gpu.stopExpired()
      }
      const ended = gpu.observe(p, at)
      if (ended)
        this.#d.onReady({ requestId: ended.requestId, bootMs: at.rc - ended.firstAt, at: at.wall })
      gpu.setIdle(idle, at)
    }
  }

  /** No GPU online or booting: wake one, a shutting-down one first (it is still warm). */
  #wake(at: Stamp): void {
    const gpus = this.all()
    if (gpus.some((g) => g.phase === 'up' || g.phase === 'booting')) return
    const pick =
      gpus.find((g) => g.phase === 'shutting-down' && this.managed(g.id)) ??
      gpus.find((g) => g.phase === 'off' && this.managed(g.id))
    if (pick) this.#start(pick, 'queued', at)
  }

  #retryBoots(at: Stamp): void {
    const online = new Set(
      this.#d.inputs
        .gpus()
        .filter((p) => p.online)
        .map((p) => p.id),
    )
    for (const gpu of this.all()) {
      const boot = gpu.boot
      if (gpu.phase !== 'booting' || !boot || at.rc - boot.rcAt < boot.waitMs) continue
      if (online.has(gpu.id) && gpu.stopAt === null) continue // up, its service still loading
      this.#start(gpu, 'boot-deadline', at)
    }
  }

  /** Nothing waits any more: a boot that has passed its deadline is not asked again. */
  #abandonBoots(at: Stamp): void {
    for (const gpu of this.all()) {
      const boot = gpu.boot
      if (gpu.phase === 'booting' && boot && at.rc - boot.rcAt >= boot.waitMs) gpu.giveUp(at)
    }
  }

  #stopIdle(at: Stamp): void {
    if (at.rc - this.#lastSubmit < Math.min(RECENT_SUBMIT_MS, this.#d.idleMs)) return
    for (const gpu of this.all()) {
      const idle = gpu.idleSince
      if (gpu.phase !== 'up' || !idle || !this.managed(gpu.id)) continue
      if (at.rc - idle.rc >= this.#d.idleMs) this.#stop(gpu, 'idle', at)
    }
  }

  #start(gpu: GpuPower, reason: PowerReason, at: Stamp): string {
    const retry = reason === 'boot-deadline' ? gpu.boot : null
    const attempts = (retry?.attempts ?? 0) + 1
    const backoff = Math.min(2 ** (attempts - 1), MAX_BACKOFF)
    const jitter = 1 + 0.1 * (this.#d.random ?? Math.random)()
    const requestId = this.#d.request({ gpuId: gpu.id, action: 'start', reason })
    // A retry's deadline counts from now; the boot's length from its first request.
    const waitMs = Math.round(this.#d.bootDeadlineMs * backoff * jitter)
    const firstAt = retry?.firstAt ?? at.rc
    gpu.started({ requestId, rcAt: at.rc, firstAt, attempts, waitMs }, at)
    return requestId
  }

  #stop(gpu: GpuPower, reason: PowerReason, at: Stamp): string {
    const requestId = this.#d.request({ gpuId: gpu.id, action: 'stop', reason })
    gpu.stopping(requestId, at)
    return requestId
  }

  #gpuOf(id: string): GpuPower {
    let gpu = this.#gpus.get(id)
    if (!gpu) {
      gpu = new GpuPower(id, this.#stamp())
      this.#gpus.set(id, gpu)
    }
    return gpu
  }

  #stamp(): Stamp {
    return { rc: this.#d.relay(), wall: this.#d.now() }
  }
}
