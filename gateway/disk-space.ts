/**
 * Free space of the data folder (docs/design.md §6, a full disk): new uploads and submits are
 * refused with DISK_FULL while it is below the configured minimum, or for a moment after a write
 * failed for lack of space; everything else keeps working, and it all resumes by itself once
 * space returns. The folder is asked (statfs) at most once per `checkEveryMs`, so the check is
 * cheap on every request.
 */
import { statfsSync } from 'node:fs'
import { AppError, appError } from '../lib/errors.js'
import { ERRORS } from '../protocol/index.js'

export const DISK_FULL_MSG = ERRORS.DISK_FULL.text

export function diskFull(cause?: unknown): AppError {
  return appError('DISK_FULL', cause === undefined ? {} : { cause })
}

/** An error (or one of its causes) that means the disk is full: ENOSPC, EDQUOT, SQLITE_FULL. */
export function isDiskFullError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== null && e !== undefined && depth < 8; depth++) {
    if (typeof e !== 'object') return false
    if (e instanceof AppError && e.code === 'DISK_FULL') return true
    const code = (e as { code?: unknown }).code
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return true
    e = (e as { cause?: unknown }).cause
  }
  return false
}

export interface DiskSpaceOptions {
  /** Any path on the data disk (the data folder). */
  readonly folder: string
  readonly minFreeBytes: number
  /** A monotonic clock in ms (tests may step it). */
  readonly clock?: () => number
  readonly checkEveryMs?: number
}

export class DiskSpace {
  readonly #folder: string
  readonly #minFreeBytes: number
  readonly #clock: () => number
  readonly #checkEveryMs: number
  #checkedAt = Number.NEGATIVE_INFINITY
  #freeBytes = Number.POSITIVE_INFINITY
  /** A write failed for lack of space: full until the next statfs says otherwise. */
  #failedWrite = false

  constructor(opts: DiskSpaceOptions) {
    this.#folder = opts.folder
    this.#minFreeBytes = opts.minFreeBytes
    this.#clock = opts.clock ?? (() => performance.now())
    this.#checkEveryMs = opts.checkEveryMs ?? 1_000
  }

  /** Free bytes as last read (read again when older than `checkEveryMs`). */
  freeBytes(): number {
    this.#refresh()
    return this.#freeBytes
  }

  /** True while new files and tasks are refused. */
  full(): boolean {
    this.#refresh()
    return this.#failedWrite || this.#freeBytes < this.#minFreeBytes
  }

  /** Throw DISK_FULL (507) while the disk is full. */
  assertRoom(): void {
    if (this.full()) throw diskFull()
  }

  /**
   * Report a failed write: a lack of space refuses new work until the next check finds room
   * (at most `checkEveryMs` later). Returns whether it was one.
   */
  noteWriteError(err: unknown): boolean {
    if (!isDiskFullError(err)) return false
    this.#failedWrite = true
    // The next question reads the disk again, no sooner than checkEveryMs from now.
    this.#checkedAt = this.#clock()
    return true
  }

  #refresh(): void {
    const at = this.#clock()
    if (at - this.#checkedAt < this.#checkEveryMs) return
    this.#checkedAt = at
    try {
      const stats = statfsSync(this.#folder)
      this.#freeBytes = stats.bavail * stats.bsize
      // Room again (by the threshold) ends a failed write's refusal; a disk that is still full
      // fails the next write, which refuses again.
      this.#failedWrite = false
    } catch {
      // Cannot ask (folder gone?): keep the last answer; writes will tell.
    }
  }
}
