/**
 * The power requests (table `power_requests`): each request the gateway made, the channels it
 * used, its outcome and detail (exit codes, HTTP statuses: never a command's output), and for a
 * start request when its GPU became ready, so boot times can be learned. The one writer of the
 * table.
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from '../db.js'
import type { PowerAction, PowerReason } from '../../protocol/index.js'

export type PowerOutcome = 'pending' | 'ok' | 'failed' | 'timeout'

/** A request as `GET /api/relay/power` shows it; times are wall-clock ms. */
export interface PowerRequest {
  readonly id: string
  readonly gpu_id: string
  readonly action: PowerAction
  readonly reason: PowerReason
  /** The channels used, comma-separated: `command`, `url`, `mqtt`. */
  readonly channel: string
  readonly outcome: PowerOutcome
  readonly detail: string | null
  readonly at: number
  readonly finished_at: number | null
  /** Start requests: when the GPU became ready (wall ms) and how long it took (relay ms). */
  readonly ready_at: number | null
  readonly boot_ms: number | null
}

/** A GPU's newest request, for the manager after a restart. */
export interface LastRequest {
  readonly requestId: string
  readonly action: PowerAction
  /** Relay ms it was made at. */
  readonly rcAt: number
  /** A start whose GPU became ready. */
  readonly ready: boolean
  readonly outcome: PowerOutcome
}

interface Row extends PowerRequest {
  readonly rc_at: number
}

/** Requests kept; older ones go as new ones come. */
const KEEP = 1_000
const DETAIL_MAX = 500
const BOOTS = 20

export class PowerStore {
  readonly #insert: Statement<[string, string, string, string, string, number, number]>
  readonly #finish: Statement<[string, string, number, string]>
  readonly #ready: Statement<[number, number, string]>
  readonly #recent: Statement<[number], Row>
  readonly #get: Statement<[string], Row>
  readonly #latestOf: Statement<[string], Row>
  readonly #boots: Statement<[number], { boot_ms: number }>
  readonly #trim: Statement<[number]>

  constructor(db: Db) {
    this.#insert = db.prepare(
      `INSERT INTO power_requests (id, gpu_id, action, reason, channel, outcome, at, rc_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)`,
    )
    this.#finish = db.prepare(
      `UPDATE power_requests SET outcome = ?, detail = ?, finished_at = ?
       WHERE id = ? AND outcome = 'pending'`,
    )
    this.#ready = db.prepare(
      `UPDATE power_requests SET ready_at = ?, boot_ms = ?
       WHERE id = ? AND action = 'start' AND ready_at IS NULL`,
    )
    this.#recent = db.prepare('SELECT * FROM power_requests ORDER BY seq DESC LIMIT ?')
    this.#get = db.prepare('SELECT * FROM power_requests WHERE id = ?')
    this.#latestOf = db.prepare(
      'SELECT * FROM power_requests WHERE gpu_id = ? ORDER BY seq DESC LIMIT 1',
    )
    this.#boots = db.prepare(
      `SELECT boot_ms FROM power_requests WHERE action = 'start' AND boot_ms IS NOT NULL
       ORDER BY seq DESC LIMIT ?`,
    )
    this.#trim = db.prepare(
      'DELETE FROM power_requests WHERE seq <= (SELECT MAX(seq) FROM power_requests) - ?',
    )
  }

  /** A new request, pending; `at` wall ms, `rcAt` relay ms. */
  add(r: {
    readonly id: string
    readonly gpuId: string
    readonly action: PowerAction
    readonly reason: PowerReason
    readonly channels: readonly string[]
    readonly at: number
    readonly rcAt: number
  }): void {
    this.#insert.run(r.id, r.gpuId, r.action, r.reason, r.channels.join(','), r.at, r.rcAt)
    this.#trim.run(KEEP)
  }

  finish(id: string, result: { outcome: PowerOutcome; detail: string; at: number }): void {
    this.#finish.run(result.outcome, result.detail.slice(0, DETAIL_MAX), result.at, id)
  }

  /** The GPU a start request asked for became ready: `at` wall ms, `bootMs` relay ms taken. */
  markReady(id: string, at: number, bootMs: number): void {
    this.#ready.run(at, Math.max(0, Math.round(bootMs)), id)
  }

  get(id: string): PowerRequest | undefined {
    const row = this.#get.get(id)
    return row ? strip(row) : undefined
  }

  /** The newest request for one GPU. */
  latestOf(gpuId: string): PowerRequest | undefined {
    const row = this.#latestOf.get(gpuId)
    return row ? strip(row) : undefined
  }

  /** What a restart carries on from: the newest request for one GPU, on the relay clock. */
  lastOf(gpuId: string): LastRequest | undefined {
    const row = this.#latestOf.get(gpuId)
    return row
      ? {
          requestId: row.id,
          action: row.action,
          rcAt: row.rc_at,
          ready: row.ready_at !== null,
          outcome: row.outcome,
        }
      : undefined
  }

  /** Newest first. */
  recent(limit: number): PowerRequest[] {
    return this.#recent.all(limit).map(strip)
  }

  /** Power-on → ready of the recent boots (relay ms), newest first. */
  recentBootMs(): number[] {
    return this.#boots.all(BOOTS).map((r) => r.boot_ms)
  }
}

function strip(row: Row): PowerRequest {
  return {
    id: row.id,
    gpu_id: row.gpu_id,
    action: row.action,
    reason: row.reason,
    channel: row.channel,
    outcome: row.outcome,
    detail: row.detail,
    at: row.at,
    finished_at: row.finished_at,
    ready_at: row.ready_at,
    boot_ms: row.boot_ms,
  }
}
