/** What every route group is given, and the checks they share. */
import type { Request } from 'express'
import type { Logger } from 'pino'
import type { FilePool } from '../file-pool.js'
import type { HttpAuth } from '../http-auth.js'
import type { RateLimiter } from '../rate-limit.js'
import type { TaskActions } from '../task-actions.js'
import type { TaskService } from '../task-service.js'
import type { TaskStore } from '../task-store.js'
import { AppError } from '../../lib/errors.js'

export interface RouteDeps {
  readonly views: TaskService
  readonly actions: TaskActions
  readonly store: TaskStore
  readonly pool: FilePool
  readonly auth: HttpAuth
  readonly submitLimiter: RateLimiter
  readonly uploadLimiter: RateLimiter
  readonly allowedExts: readonly string[]
  readonly uploadMaxBytes: number
  readonly log: Logger
  readonly now: () => number
}

/** Only the configured media types (ALLOWED_EXTS) get into the pool or a task. */
export function assertAllowedExt(ext: string, allowed: readonly string[]): void {
  if (!allowed.includes(ext)) {
    throw new AppError(
      'EXT_NOT_ALLOWED',
      400,
      `不支持的文件类型 ${ext}，允许：${allowed.join(' ')}`,
    )
  }
}

/** Rate limits count per owner: the license key if the request names one, else the address. */
export function limitKey(req: Request, auth: HttpAuth, bodyLicense?: unknown): string {
  if (typeof bodyLicense === 'string' && bodyLicense !== '') return `license:${bodyLicense}`
  const license = auth.licenseOf(req)
  return license === null ? `ip:${req.ip ?? 'unknown'}` : `license:${license}`
}
