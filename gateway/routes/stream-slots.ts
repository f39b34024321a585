/**
 * Long-lived streams open per caller (rate-limit.ts's key: address and proved credential): a
 * count per key, the key forgotten when its last stream closes, so memory follows what is open.
 */
export class StreamSlots {
  readonly #max: number
  readonly #open = new Map<string, number>()

  constructor(max: number) {
    this.#max = max
  }

  /** Streams open now (for tests and metrics). */
  get size(): number {
    let n = 0
    for (const count of this.#open.values()) n += count
    return n
  }

  /** A slot for `key` and the function that gives it back (once); null when `key` has all. */
  take(key: string): (() => void) | null {
    const count = this.#open.get(key) ?? 0
    if (count >= this.#max) return null
    this.#open.set(key, count + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.#open.get(key) ?? 1) - 1
      if (left > 0) this.#open.set(key, left)
      else this.#open.delete(key)
    }
  }
}
