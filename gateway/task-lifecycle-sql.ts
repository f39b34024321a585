/**
 * The statements of the task lifecycle (task-lifecycle.ts), prepared once. Every UPDATE that
 * changes `state` carries the guard of its move from the transition table (task-transitions.ts).
 */
import type { Statement } from 'better-sqlite3'
import type { Db } from './db.js'
import type { TaskRow } from './task-store.js'
import { stateGuard, type TransitionName } from './task-transitions.js'

export type Run = Statement

export interface LifecycleStatements {
  readonly get: Statement<[string], TaskRow>
  readonly insertQueued: Run
  readonly insertDone: Run
  readonly update: Readonly<Record<Exclude<TransitionName, 'submit' | 'cacheHit'>, Run>>
  readonly published: Run
  readonly reclaimed: Run
  readonly progress: Run
  readonly storeResult: Run
  readonly restartStall: Run
}

const INSERT_COLUMNS = `id, owner, source, type, state, attempt, gpu_id, audio_hash, audio_ext,
  audio_size, video_hash, video_ext, video_size, options, created_at, updated_at, expires_at,
  request_key, rc_created_at, rc_expires_at, est_start_s, webhook_url`

export function lifecycleStatements(db: Db): LifecycleStatements {
  const values = 'VALUES (?, ?, ?, ?, ?, 1, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
  const g = (name: TransitionName): string => stateGuard(name)
  return {
    get: db.prepare('SELECT * FROM tasks WHERE id = ?'),
    insertQueued: db.prepare(`INSERT INTO tasks (${INSERT_COLUMNS}) ${values}`),
    // Born done with an earlier task's result: published (there is nothing to offer).
    insertDone: db.prepare(
      `INSERT INTO tasks (${INSERT_COLUMNS}, progress, result_hash, result_ext, result_size,
         result_type, claimed_at, finished_at, published_attempt, rc_claimed_at, rc_finished_at)
       ${values.slice(0, -1)}, 100, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
    ),
    update: {
      claim: db.prepare(
        `UPDATE tasks SET state = 'processing', gpu_id = ?, claimed_at = ?, updated_at = ?,
           last_seq = ?, claim_epoch = ?, progress_at = ?, progress = 0, stage = 'preparing',
           stage_message = NULL, rc_claimed_at = ?, rc_progress_at = ?,
           rc_started_at = COALESCE(rc_started_at, ?)
         WHERE id = ? AND attempt = ? AND rc_expires_at > ? AND ${g('claim')}`,
      ),
      requeue: db.prepare(
        `UPDATE tasks SET state = 'queued', attempt = attempt + 1, gpu_id = NULL, progress = 0,
           stage = NULL, stage_message = NULL, current_frame = NULL, total_frames = NULL,
           last_seq = 0, claimed_at = NULL, rc_claimed_at = NULL, error_msg = ?, updated_at = ?
         WHERE id = ? AND attempt = ? AND ${g('requeue')}`,
      ),
      finish: db.prepare(
        `UPDATE tasks SET state = 'done', progress = 100, stage = NULL, stage_message = NULL,
           last_seq = ?, result_hash = stored_result_hash, result_ext = stored_result_ext,
           result_size = stored_result_size, result_type = stored_result_type, error_msg = NULL,
           updated_at = ?, finished_at = ?, rc_finished_at = ?
         WHERE id = ? AND gpu_id = ? AND attempt = ? AND stored_result_attempt = ?
           AND stored_result_hash = ? AND stored_result_size = ? AND ${g('finish')}`,
      ),
      fail: db.prepare(
        `UPDATE tasks SET state = 'error', stage = NULL, error_msg = ?, updated_at = ?,
           finished_at = ?, rc_finished_at = ?
         WHERE id = ? AND attempt = ? AND ${g('fail')}`,
      ),
      cancel: db.prepare(
        `UPDATE tasks SET state = 'cancelled', stage = NULL, updated_at = ?, finished_at = ?,
           rc_finished_at = ?
         WHERE id = ? AND attempt = ? AND ${g('cancel')}`,
      ),
      expire: db.prepare(
        `UPDATE tasks SET state = 'expired', updated_at = ?, finished_at = ?, rc_finished_at = ?
         WHERE id = ? AND attempt = ? AND ${g('expire')}`,
      ),
      retry: db.prepare(
        `UPDATE tasks SET state = 'queued', attempt = attempt + 1, gpu_id = NULL, progress = 0,
           stage = NULL, stage_message = NULL, current_frame = NULL, total_frames = NULL,
           last_seq = 0, claimed_at = NULL, finished_at = NULL, error_msg = NULL, updated_at = ?,
           expires_at = ?, rc_claimed_at = NULL, rc_finished_at = NULL, rc_expires_at = ?
         WHERE id = ? AND attempt = ? AND ${g('retry')}`,
      ),
      purge: db.prepare(`DELETE FROM tasks WHERE id = ? AND attempt = ? AND ${g('purge')}`),
    },
    published: db.prepare(
      'UPDATE tasks SET published_attempt = ? WHERE id = ? AND attempt = ? AND published_attempt < ?',
    ),
    reclaimed: db.prepare(
      `UPDATE tasks SET claim_epoch = ? WHERE id = ? AND attempt = ? AND state = 'processing'
         AND (claim_epoch IS NULL OR claim_epoch < ?)`,
    ),
    progress: db.prepare(
      `UPDATE tasks SET
         progress_at = CASE WHEN progress != ? OR stage IS NOT ? THEN ? ELSE progress_at END,
         rc_progress_at = CASE WHEN progress != ? OR stage IS NOT ? THEN ? ELSE rc_progress_at END,
         progress = ?, stage = ?, stage_message = ?, current_frame = ?, total_frames = ?,
         last_seq = ?, updated_at = ?
       WHERE id = ? AND state = 'processing' AND gpu_id = ? AND attempt = ? AND last_seq < ?`,
    ),
    storeResult: db.prepare(
      `UPDATE tasks SET stored_result_attempt = ?, stored_result_hash = ?, stored_result_ext = ?,
         stored_result_size = ?, stored_result_type = ?
       WHERE id = ? AND state = 'processing' AND gpu_id = ? AND attempt = ?`,
    ),
    restartStall: db.prepare(`UPDATE tasks SET rc_progress_at = ? WHERE state = 'processing'`),
  }
}
