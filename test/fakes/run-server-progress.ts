/**
 * What run_server's `/progress` shows for one task at a moment (docs/real-services.md §1 "Task life and
 * progress words"), computed from the time since the job started:
 *
 * - queued: `排队等待中... (第N位)`, progress 1 + one per 10 s waited, at most 5 (the stored words
 *   `排队中...` / `等待可用 GPU 槽位...` are always replaced by this line in the real view);
 * - processing (first quarter of the run): `开始处理...` → `视频信息: 1080x1920 25.0fps 预计250帧`
 *   → `预处理中... ({s}s)`, progress 5 → 20;
 * - synthesizing (the rest): `合成中 {i}/{N} 帧 ({pct}%)`, pct = min(95, i/N·90 + 5), from 20 up;
 * - done: 100 `合成完成` (`合成完成（缓存命中）` for a cache hit); error: 0 `合成失败: {reason}`.
 *
 * These are the fake's own types, an independent model of the real program: nothing from protocol/.
 */

export type TaskStatus = 'queued' | 'processing' | 'synthesizing' | 'encoding' | 'done' | 'error'

export const MAX_CONCURRENT = 1
export const TOTAL_FRAMES = 250
const VIDEO_INFO = `视频信息: 1080x1920 25.0fps 预计${String(TOTAL_FRAMES)}帧`

/** `_get_queue_info()`. */
export interface QueueInfo {
  readonly total_tasks: number
  readonly processing: number
  readonly queued: number
  readonly max_concurrent: number
}

/** `_build_progress_data()`: every key, always; times are epoch seconds, 0 when unset. */
export interface ProgressView {
  readonly task_id: string
  readonly status: TaskStatus
  readonly progress: number
  readonly message: string
  readonly total_frames: number
  readonly current_frame: number
  readonly queue_position: number
  readonly queue: QueueInfo
  readonly created_at: number
  readonly started_at: number
  readonly finished_at: number
  readonly error: string
}

/** A fault armed by `failNext` / `hangNext`, taken by the next job to start. */
export type JobFault =
  | { readonly kind: 'fail'; readonly reason: string }
  | { readonly kind: 'hang'; readonly atProgress: number }

/** The part of a view that depends on the task's stage. */
export interface Stage {
  readonly status: TaskStatus
  readonly progress: number
  readonly message: string
  readonly total_frames: number
  readonly current_frame: number
}

/** How long a run lasts: a bad input fails as preprocessing starts; a hung job never ends. */
export function runLengthMs(fault: JobFault | null, durationMs: number): number {
  if (fault?.kind === 'hang') return Number.POSITIVE_INFINITY
  if (fault?.kind === 'fail') return durationMs / 10
  return durationMs
}

/** The first frame shown while synthesizing: where the frame formula reaches 20 %. */
const FIRST_FRAME = Math.ceil((15 * TOTAL_FRAMES) / 90)

function percentAt(frame: number): number {
  return Math.min(95, Math.floor((frame / TOTAL_FRAMES) * 90) + 5)
}

function synthesizing(frame: number, progress = percentAt(frame)): Stage {
  return {
    status: 'synthesizing',
    progress,
    message: `合成中 ${String(frame)}/${String(TOTAL_FRAMES)} 帧 (${String(progress)}%)`,
    total_frames: TOTAL_FRAMES,
    current_frame: frame,
  }
}

function naturalStage(elapsedMs: number, durationMs: number): Stage {
  const e = Math.min(Math.max(elapsedMs, 0), durationMs)
  const processing = { status: 'processing', current_frame: 0 } as const
  if (e * 20 < durationMs) {
    return { ...processing, progress: 5, message: '开始处理...', total_frames: 0 }
  }
  if (e * 10 < durationMs) {
    return { ...processing, progress: 5, message: VIDEO_INFO, total_frames: TOTAL_FRAMES }
  }
  if (e * 4 < durationMs) {
    // 0.10 → 0.25 of the run: 5 → 20.
    const progress = Math.min(20, 5 + Math.floor(((e * 10 - durationMs) * 10) / durationMs))
    const seconds = Math.floor(e / 1000)
    const message = `预处理中... (${String(seconds)}s)`
    return { ...processing, progress, message, total_frames: TOTAL_FRAMES }
  }
  const span = TOTAL_FRAMES - FIRST_FRAME
  const frame = FIRST_FRAME + Math.floor(((e * 4 - durationMs) * span) / (3 * durationMs))
  return synthesizing(Math.min(TOTAL_FRAMES, frame))
}

/** A running job; a hung one freezes at its progress, status `synthesizing`, for ever. */
export function runningStage(elapsedMs: number, durationMs: number, fault: JobFault | null): Stage {
  const natural = naturalStage(elapsedMs, durationMs)
  if (fault?.kind !== 'hang' || natural.progress < fault.atProgress) return natural
  const frame = Math.min(
    TOTAL_FRAMES,
    Math.max(0, Math.ceil(((fault.atProgress - 5) * TOTAL_FRAMES) / 90)),
  )
  return synthesizing(frame, fault.atProgress)
}

export function queuedStage(waitedMs: number, position: number): Stage {
  return {
    status: 'queued',
    progress: Math.min(5, 1 + Math.floor(Math.max(waitedMs, 0) / 10_000)),
    message: `排队等待中... (第${String(position)}位)`,
    total_frames: 0,
    current_frame: 0,
  }
}

export function doneStage(cached: boolean): Stage {
  return {
    status: 'done',
    progress: 100,
    message: cached ? '合成完成（缓存命中）' : '合成完成',
    total_frames: cached ? 0 : TOTAL_FRAMES,
    current_frame: cached ? 0 : TOTAL_FRAMES,
  }
}

export function errorStage(reason: string): Stage {
  return {
    status: 'error',
    progress: 0,
    message: `合成失败: ${reason}`,
    total_frames: TOTAL_FRAMES,
    current_frame: 0,
  }
}
