import { existsSync } from 'node:fs'
import type { Logger } from 'pino'

/** Something started that must be stopped. */
export interface Closable {
  close(): Promise<void>
}

/**
 * Collects close functions as things start and runs them in reverse order, once. A factory that
 * fails half-way closes what it already started.
 */
export class Closer implements Closable {
  readonly #steps: (() => Promise<void> | void)[] = []
  #closing: Promise<void> | undefined

  add(step: () => Promise<void> | void): void {
    this.#steps.push(step)
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      const errors: unknown[] = []
      for (const step of this.#steps.reverse()) {
        try {
          await step()
        } catch (err) {
          errors.push(err)
        }
      }
      if (errors.length > 0) throw new AggregateError(errors, 'errors while closing')
    })()
    return this.#closing
  }
}

/** For `main.ts`: close the handle on SIGINT/SIGTERM, exit non-zero if that fails. */
export function closeOnSignals(handle: Closable, log: Logger): void {
  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'shutting down')
    handle.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'error while shutting down')
        process.exit(1)
      },
    )
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
}

/**
 * For `main.ts`: run the start-up function; a ConfigError (every bad key listed) exits 2, any
 * other start-up failure exits 1.
 */
export function runMain(what: string, start: () => Promise<void>): void {
  // A .env file in the working folder, if any, fills variables not already set.
  if (existsSync('.env')) process.loadEnvFile('.env')
  start().catch((err: unknown) => {
    if (err instanceof Error && err.name === 'ConfigError') {
      process.stderr.write(`${err.message}\n`)
      process.exit(2)
    }
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err)
    process.stderr.write(`${what} failed to start: ${text}\n`)
    process.exit(1)
  })
}
