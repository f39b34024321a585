/**
 * Errors a caller branches on: a code from the error catalog (protocol/errors.ts), whose HTTP
 * status and Chinese words come with it. The gateway's error middleware maps them to the envelope
 * `{code, msg, data}`. Built with `appError(code, wording?)`, never with words of its own.
 */
import { ERRORS, errorText, type ErrorCode, type WordingArgs } from '../protocol/errors.js'

export interface AppErrorOptions {
  readonly cause?: unknown
  readonly details?: Readonly<Record<string, unknown>>
}

export class AppError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly details: Readonly<Record<string, unknown>> | undefined

  /** Use `appError`: it takes the words from the catalog. */
  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'AppError'
    this.code = code
    this.status = ERRORS[code].status
    this.details = options.details
  }
}

/**
 * The catalog's error `code`, in its text or a named variant with their parameters:
 * `appError('TASK_NOT_CANCELLABLE', { params: { state } })`,
 * `appError('TASK_NOT_FOUND', { variant: 'unknownId', params: { id } })`.
 */
export function appError<C extends ErrorCode>(
  code: C,
  ...args: WordingArgs<C, AppErrorOptions>
): AppError {
  const [wording] = args
  const text = errorText<C>(code, ...(args as WordingArgs<C>))
  const options: AppErrorOptions = {
    ...(wording?.cause === undefined ? {} : { cause: wording.cause }),
    ...(wording?.details === undefined ? {} : { details: wording.details }),
  }
  return new AppError(code, text, options)
}

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError
}

/** A readable one-line message for any thrown value. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
