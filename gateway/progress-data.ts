/**
 * A task as run_server's `GET /api/heygem/progress` describes one (docs/design.md §7), the same
 * data its WebSocket pushes: every key run_server sends, with the relay's own added beside them.
 *
 * While no GPU is ready the task is `queued` in the relay, but the unchanged PC app never shows a
 * queued task's message, only its own "排队中 (第N位)". So by default such a task is reported as
 * `processing` with the waiting words (its place, and an estimate that counts down), which the PC
 * app shows as they are; WAITING_STATUS=queued keeps run_server's word instead.
 */
import type { TaskRow } from './task-store.js'
import { failureText, resultUrl, type TaskService } from './task-service.js'
import { queueInfo } from './routes/health.js'
import type { ProgressData, RunServerStatus } from '../protocol/index.js'

export interface ProgressDeps {
  readonly views: TaskService
  readonly waitingStatus: 'processing' | 'queued'
}

/** Shown by the PC app as its lowest percentage (it clamps to 12–95): "begun, nothing done yet". */
const WAITING_PROGRESS = 1

export function progressData(deps: ProgressDeps, row: TaskRow): ProgressData {
  const view = deps.views.view(row)
  const q = deps.views.queue()
  const waitsForGpu = view.waiting === 'offline' || view.waiting === 'starting'
  const status: RunServerStatus = waitsForGpu ? deps.waitingStatus : deps.views.serviceStatus(row)
  return {
    task_id: row.id,
    status,
    progress: progressOf(row, waitsForGpu && status === 'processing'),
    message: view.message,
    total_frames: row.total_frames ?? 0,
    current_frame: row.current_frame ?? 0,
    queue_position: view.position,
    queue: { ...queueInfo(q) },
    created_at: seconds(row.created_at),
    started_at: seconds(row.claimed_at),
    finished_at: seconds(row.finished_at),
    error: failureText(view) ?? '',
    // The relay's own keys.
    eta_seconds: view.etaSeconds,
    result_url: resultUrl(row),
    error_msg: failureText(view),
  }
}

function progressOf(row: TaskRow, shownAsWaiting: boolean): number {
  if (shownAsWaiting) return WAITING_PROGRESS
  if (row.state === 'done') return 100
  // At 0 the PC app shows a guess of its own from the time spent: a running task has begun.
  if (row.state === 'processing') return Math.max(WAITING_PROGRESS, row.progress)
  return 0
}

/** Epoch seconds, 0 when unset (run_server's convention). */
function seconds(ms: number | null): number {
  return ms === null ? 0 : ms / 1000
}
