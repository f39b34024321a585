import { pino, type Logger } from 'pino'

export type { Logger }

/** The root logger: plain JSON to stdout. Only `main.ts` files and scripts call this. */
export function createLogger(level: string, name: string): Logger {
  return pino({ level, name, base: { pid: process.pid } })
}

/** A logger that writes nothing, for tests and libraries used without one. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
