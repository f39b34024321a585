/**
 * Result hand-overs under way (docs/design.md §6): while a bridge is streaming an attempt's
 * result, or trying again after a refusal (a full disk, a 5xx), the GPU's work is done and only
 * the transfer is left. The execution and stall clocks hold for that attempt meanwhile, so a long
 * or retried hand-over is never turned into a new GPU run. In memory: after a restart the
 * bridge's next try (its backoff is at most 30 s) marks it again.
 */
const MAX_TRACKED = 10_000

export class HandOvers {
  readonly #relay: () => number
  /** `taskId:attempt` → relay-clock ms of the last sign of the hand-over. */
  readonly #seen = new Map<string, number>()

  constructor(relay: () => number) {
    this.#relay = relay
  }

  /** A sign of life of this attempt's hand-over: a request arrived, or more of its bytes. */
  touch(taskId: string, attempt: number): void {
    const key = `${taskId}:${String(attempt)}`
    this.#seen.delete(key) // re-inserted last: the map stays in order of the last sign
    this.#seen.set(key, this.#relay())
    if (this.#seen.size > MAX_TRACKED) {
      const oldest = this.#seen.keys().next()
      if (!oldest.done) this.#seen.delete(oldest.value)
    }
  }

  /** True when this attempt's hand-over showed a sign within `withinMs`. */
  active(taskId: string, attempt: number, withinMs: number): boolean {
    const at = this.#seen.get(`${taskId}:${String(attempt)}`)
    return at !== undefined && this.#relay() - at < withinMs
  }

  /** Drop what is older than `olderThanMs` (from the clocks' tick). */
  prune(olderThanMs: number): void {
    const cutoff = this.#relay() - olderThanMs
    for (const [key, at] of this.#seen) {
      if (at >= cutoff) break
      this.#seen.delete(key)
    }
  }

  get size(): number {
    return this.#seen.size
  }
}
