/**
 * The reads the estimates make on every status request (task-service.ts), prepared once: recent
 * runs with the lengths of their audio, what is queued ahead of a task, and what runs now. Each
 * is one indexed statement; the queue ahead is counted and summed in SQL, never read into memory.
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import type { RunSample } from './run-estimate.js'

/** The tasks queued ahead of one: how many, and how much audio those of known length hold. */
export interface QueueAhead {
  readonly count: number
  readonly knownCount: number
  readonly knownAudioMs: number
}

/** A task running now: when it was claimed (wall ms), its progress and its audio's length. */
export interface RunningTask {
  readonly claimedAt: number
  readonly progress: number
  readonly audioMs: number | null
}

/** How many finished runs the run estimate learns from. */
export const RECENT_RUNS = 20

export class EstimateReads {
  readonly #runs: Statement<[number], { run_ms: number; audio_ms: number | null }>
  readonly #ahead: Statement<[number], { n: number; known: number; known_ms: number }>
  readonly #running: Statement<
    [],
    { claimed_at: number | null; progress: number; audio_ms: number | null }
  >

  constructor(db: Db) {
    // Runs on a GPU only: a cache hit is born done and ran nowhere (tasks_by_finish).
    this.#runs = db.prepare(
      `SELECT t.rc_finished_at - t.rc_claimed_at AS run_ms, f.audio_ms AS audio_ms
       FROM tasks t LEFT JOIN files f ON f.hash = t.audio_hash
       WHERE t.state = 'done' AND t.gpu_id IS NOT NULL
         AND t.rc_claimed_at IS NOT NULL AND t.rc_finished_at IS NOT NULL
       ORDER BY t.finished_at DESC LIMIT ?`,
    )
    // The same range of tasks_by_state as the queue position, with each one's audio (files' key).
    this.#ahead = db.prepare(
      `SELECT COUNT(*) AS n, COUNT(f.audio_ms) AS known, COALESCE(SUM(f.audio_ms), 0) AS known_ms
       FROM tasks t LEFT JOIN files f ON f.hash = t.audio_hash
       WHERE t.state = 'queued' AND t.seq < ?`,
    )
    this.#running = db.prepare(
      `SELECT t.claimed_at, t.progress, f.audio_ms AS audio_ms
       FROM tasks t LEFT JOIN files f ON f.hash = t.audio_hash WHERE t.state = 'processing'`,
    )
  }

  /** The last RECENT_RUNS successful runs, newest first. */
  recentRuns(): RunSample[] {
    return this.#runs
      .all(RECENT_RUNS)
      .map((r) => ({ runMs: Math.max(0, r.run_ms), audioMs: r.audio_ms }))
  }

  /** Queued tasks submitted before `seq` (all of them: Number.MAX_SAFE_INTEGER). */
  queueAhead(seq: number): QueueAhead {
    const row = this.#ahead.get(seq)
    return {
      count: row?.n ?? 0,
      knownCount: row?.known ?? 0,
      knownAudioMs: row?.known_ms ?? 0,
    }
  }

  /** Tasks running now (at most the GPUs' capacity). */
  running(): RunningTask[] {
    return this.#running.all().map((r) => ({
      claimedAt: r.claimed_at ?? 0,
      progress: r.progress,
      audioMs: r.audio_ms,
    }))
  }
}
