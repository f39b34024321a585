/**
 * How one job of the fake run_server looks at a moment: the stage curve of the real service
 * (processing → synthesizing with frame counts → encoding → done | error), computed from elapsed time.
 */
import type { ProgressData } from '../../protocol/index.js'

export const TOTAL_FRAMES = 250

/** A fault armed by `failNext` / `hangNext`, taken by the next job to start. */
export type JobFault =
  | { readonly kind: 'fail'; readonly message: string }
  | { readonly kind: 'hang'; readonly atProgress: number }

/** How long a run lasts: a bad input fails when preprocessing ends; a hung job never ends. */
export function runLengthMs(fault: JobFault | null, durationMs: number): number {
  if (fault?.kind === 'hang') return Number.POSITIVE_INFINITY
  // Face detection runs in preprocessing: a bad input fails as synthesis would start.
  if (fault?.kind === 'fail') return durationMs / 10
  return durationMs
}

interface Stage {
  readonly status: 'processing' | 'synthesizing' | 'encoding'
  readonly progress: number
  readonly current_frame?: number
  readonly total_frames?: number
}

function framesAt(progress: number): number {
  return Math.min(TOTAL_FRAMES, Math.max(0, Math.floor(((progress - 10) / 80) * TOTAL_FRAMES)))
}

/**
 * The natural curve, progress = share of the run elapsed: 0→10 processing (the first tenth),
 * 10→90 synthesizing (frames 0→250), 90→99 encoding (the last tenth). Integer arithmetic first, so
 * the stage boundaries are exact.
 */
function stageAt(elapsedMs: number, durationMs: number): Stage {
  const elapsed = Math.min(Math.max(elapsedMs, 0), durationMs)
  const progress = Math.min(99, Math.floor((elapsed * 100) / durationMs))
  if (progress < 10) return { status: 'processing', progress }
  if (progress < 90) {
    const frame = Math.floor(((elapsed * 10 - durationMs) * TOTAL_FRAMES) / (8 * durationMs))
    return {
      status: 'synthesizing',
      progress,
      current_frame: Math.min(TOTAL_FRAMES, Math.max(0, frame)),
      total_frames: TOTAL_FRAMES,
    }
  }
  return { status: 'encoding', progress, current_frame: TOTAL_FRAMES, total_frames: TOTAL_FRAMES }
}

/** A running job; a hung one freezes at its progress, still "synthesizing". */
function runningStage(elapsedMs: number, durationMs: number, fault: JobFault | null): Stage {
  const natural = stageAt(elapsedMs, durationMs)
  if (fault?.kind !== 'hang' || natural.progress < fault.atProgress) return natural
  return {
    status: 'synthesizing',
    progress: fault.atProgress,
    current_frame: framesAt(fault.atProgress),
    total_frames: TOTAL_FRAMES,
  }
}

function stageMessage(stage: Stage): string {
  switch (stage.status) {
    case 'processing':
      return '正在预处理（人脸检测、音频特征提取）'
    case 'synthesizing':
      return `正在合成第 ${stage.current_frame ?? 0}/${stage.total_frames ?? TOTAL_FRAMES} 帧`
    case 'encoding':
      return '正在编码视频'
  }
}

/** What `/progress` reports for a job. */
export type JobView =
  | { readonly phase: 'queued'; readonly position: number }
  | { readonly phase: 'running'; readonly elapsedMs: number }
  | { readonly phase: 'ended' }

export interface DescribedJob {
  readonly taskId: string
  readonly fault: JobFault | null
  readonly view: JobView
}

export function describeJob(
  job: DescribedJob,
  durationMs: number,
  downloadUrl: (taskId: string) => string,
): ProgressData {
  const { taskId, fault, view } = job
  if (view.phase === 'queued') {
    return {
      task_id: taskId,
      status: 'queued',
      progress: 0,
      message: `排队中，前面还有 ${view.position} 个任务`,
      queue_position: view.position,
    }
  }
  if (view.phase === 'running') {
    const stage = runningStage(view.elapsedMs, durationMs, fault)
    return { task_id: taskId, ...stage, message: stageMessage(stage), queue_position: 0 }
  }
  if (fault?.kind === 'fail') {
    const last = stageAt(runLengthMs(fault, durationMs), durationMs)
    return {
      task_id: taskId,
      status: 'error',
      progress: last.progress,
      message: `处理失败：${fault.message}`,
      queue_position: 0,
      result_url: null,
      error_msg: fault.message,
    }
  }
  return {
    task_id: taskId,
    status: 'done',
    progress: 100,
    message: '处理完成',
    queue_position: 0,
    current_frame: TOTAL_FRAMES,
    total_frames: TOTAL_FRAMES,
    result_url: downloadUrl(taskId),
    error_msg: null,
  }
}
