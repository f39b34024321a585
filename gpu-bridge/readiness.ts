/**
 * Watches whether the GPU service can take work (docs/design.md §8). run_server keeps its port
 * closed while its models load, for minutes after a boot: until its health says `initialized`,
 * the bridge claims nothing, so no attempt is spent and the tasks wait as they do while the GPU is
 * off. Each change is reported once (the bridge republishes its state with `ready`).
 */
import type { Logger } from 'pino'
import type { GpuAdapter, Readiness } from './adapters/types.js'
import type { ServiceReadiness } from '../protocol/index.js'

export interface ReadinessWatchDeps {
  readonly adapter: GpuAdapter
  readonly intervalMs: number
  readonly log: Logger
  readonly onChange: (state: ServiceReadiness) => void
}

/** What the log says for each state, once per change. */
const EXPLAIN: Record<ServiceReadiness, string> = {
  ready: 'GPU service ready; claiming work',
  down: 'GPU service not reachable (booting, or loading its models with the port closed); waiting',
  loading: 'GPU service up but not initialized (loading models); waiting',
  unauthorized:
    'GPU service refused the bridge (401): set GPU_SERVICE_SECRET to its config.ini api_secret',
  relay: 'GPU_SERVICE_URL points to a gpu-relay gateway, not the GPU service: claiming nothing',
}

export class ReadinessWatch {
  readonly #d: ReadinessWatchDeps
  readonly #stop = new AbortController()
  /** null until the first probe: its result is always logged, whatever it is. */
  #state: ServiceReadiness | null = null
  #timer: NodeJS.Timeout | undefined
  #checking = false

  constructor(deps: ReadinessWatchDeps) {
    this.#d = deps
  }

  get state(): ServiceReadiness {
    return this.#state ?? 'down'
  }

  get ready(): boolean {
    return this.#state === 'ready'
  }

  /** One probe now; resolves with its result (used at start and by the timer). */
  async check(): Promise<Readiness> {
    const result = await this.#d.adapter.readiness(this.#stop.signal)
    if (this.#stop.signal.aborted) return result
    if (result.state !== this.#state) {
      this.#state = result.state
      const log = result.state === 'ready' ? this.#d.log.info : this.#d.log.warn
      log.call(this.#d.log, { service: result.state, detail: result.detail }, EXPLAIN[result.state])
      this.#d.onChange(result.state)
    }
    return result
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#checking) return
      this.#checking = true
      this.check()
        .catch((err: unknown) => this.#d.log.warn({ err }, 'readiness probe failed'))
        .finally(() => {
          this.#checking = false
        })
    }, this.#d.intervalMs)
  }

  /** A job step found the service unreachable or refusing us: no claims until a probe says so. */
  suspect(state: 'down' | 'unauthorized'): void {
    if (this.#state !== 'ready') return
    this.#state = state
    this.#d.log.warn({ service: state }, EXPLAIN[state])
    this.#d.onChange(state)
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#stop.abort()
  }
}
