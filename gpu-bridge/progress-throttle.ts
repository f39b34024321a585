/**
 * Forward progress at most once per interval, and never drop the last value: a value that arrives
 * too soon is held and sent when the interval ends (or by `flush`).
 */
export interface ProgressUpdate {
  readonly progress: number
  readonly stage: import('../protocol/index.js').Stage
  readonly message: string
  readonly currentFrame?: number
  readonly totalFrames?: number
}

export class ProgressThrottle {
  readonly #intervalMs: number
  readonly #send: (update: ProgressUpdate) => void
  readonly #now: () => number
  #lastSentAt = -Infinity
  #lastKey = ''
  #pending: ProgressUpdate | undefined
  #timer: NodeJS.Timeout | undefined

  constructor(
    intervalMs: number,
    send: (update: ProgressUpdate) => void,
    now: () => number = Date.now,
  ) {
    this.#intervalMs = intervalMs
    this.#send = send
    this.#now = now
  }

  push(update: ProgressUpdate): void {
    const key = `${update.stage}:${update.progress}:${update.message}`
    if (key === this.#lastKey && this.#pending === undefined) return
    const wait = this.#lastSentAt + this.#intervalMs - this.#now()
    if (wait <= 0) {
      this.#emit(update, key)
      return
    }
    this.#pending = update
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      this.flush()
    }, wait)
  }

  /** Send the held value now, if any. */
  flush(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const pending = this.#pending
    if (pending) this.#emit(pending, `${pending.stage}:${pending.progress}:${pending.message}`)
  }

  cancel(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#pending = undefined
  }

  #emit(update: ProgressUpdate, key: string): void {
    this.#pending = undefined
    this.#lastKey = key
    this.#lastSentAt = this.#now()
    this.#send(update)
  }
}
