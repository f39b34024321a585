/**
 * Recent boot times for the boot estimate (boot-estimate.ts). The power controller knows them
 * best (power-on request → GPU ready) and is given as `BootHistory`; until it is wired, or while
 * it has none, the gateway learns them from presence: a GPU that comes online with its service
 * still loading, until it reports ready (gpu-registry.ts `onReadiness`). That misses the
 * machine's own start-up before its bridge connects, so it is the second choice.
 */

/** Boot durations in ms, newest first (a few recent ones). */
export interface BootHistory {
  recentBootMs(): readonly number[]
  /**
   * Relay ms since the boot under way was first asked for (power-on request), null when no GPU
   * is booting at the relay's request: the boot countdown starts there, not at a task's submit.
   */
  bootElapsedMs?(): number | null
}

/** How many boots are kept and used. */
export const RECENT_BOOTS = 20

/** Online → ready durations seen by the registry, in memory (a restart starts afresh). */
export class LearnedBoots implements BootHistory {
  readonly #clock: () => number
  /** When each GPU was seen online but not ready (the start of its boot as far as we see). */
  readonly #loading = new Map<string, number>()
  #recent: number[] = []

  /** `clock`: ms on the relay clock (durations never on the wall clock). */
  constructor(clock: () => number) {
    this.#clock = clock
  }

  recentBootMs(): readonly number[] {
    return this.#recent
  }

  /** The registry's word on a GPU: online and whether its service can take work, or offline. */
  note(gpuId: string, seen: { readonly online: boolean; readonly ready: boolean }): void {
    if (!seen.online) {
      this.#loading.delete(gpuId)
      return
    }
    const began = this.#loading.get(gpuId)
    if (!seen.ready) {
      if (began === undefined) this.#loading.set(gpuId, this.#clock())
      return
    }
    if (began === undefined) return // ready when first seen: no boot was watched
    this.#loading.delete(gpuId)
    this.#recent = [Math.max(0, this.#clock() - began), ...this.#recent].slice(0, RECENT_BOOTS)
  }
}

/** The boots to estimate from: the power controller's while it has any, else the learned ones. */
export function bootsFrom(
  power: BootHistory | undefined,
  learned: BootHistory,
): () => readonly number[] {
  return () => {
    const measured = power?.recentBootMs() ?? []
    return measured.length > 0 ? measured : learned.recentBootMs()
  }
}
