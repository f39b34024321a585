/**
 * Errors a caller branches on: a stable `code`, an HTTP status and a message a person can act on
 * (Simplified Chinese, as the PC app's users read it). The gateway's error middleware maps them to
 * the envelope `{code, msg, data}`.
 */
export interface AppErrorOptions {
  readonly cause?: unknown
  readonly details?: Readonly<Record<string, unknown>>
}

export class AppError extends Error {
  readonly code: string
  readonly status: number
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(code: string, status: number, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AppError'
    this.code = code
    this.status = status
    this.details = options.details
  }
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError
}

/** A readable one-line message for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
