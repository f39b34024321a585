/**
 * HTTP shapes (DESIGN §7). The same envelope everywhere: `{code, msg, data}`; `code` 0 is success.
 * The GPU-server-compatible paths are spoken both by the GPU machine's run_server and by the gateway,
 * so the PC app only changes its URL.
 */
import { z } from 'zod'
import { Ext, FileRef, Md5, Progress, ServiceStatus, TaskId } from './common.js'
import { TaskState } from './states.js'

export function envelope<T extends z.ZodType>(data: T) {
  return z.object({ code: z.number().int(), msg: z.string(), data })
}
/** An envelope whose data we do not read (errors, or any reply we only check `code` of). */
export const AnyEnvelope = z.object({ code: z.number().int(), msg: z.string(), data: z.unknown() })
export type AnyEnvelope = z.infer<typeof AnyEnvelope>

/** Paths of the GPU server's own API (run_server.py), mirrored by the gateway. */
export const HEYGEM_PATHS = {
  health: '/api/heygem/health',
  checkFiles: '/api/heygem/check_files',
  uploadFile: '/api/heygem/upload_file',
  submit: '/api/heygem/submit',
  progress: '/api/heygem/progress',
  download: '/api/heygem/download',
  queue: '/api/heygem/queue',
} as const

/** Paths of the seed's task API. */
export const TASK_PATHS = {
  submit: '/api/heygem/task/submit',
  status: '/api/heygem/task/status',
  cancel: '/api/heygem/task/cancel',
  retry: '/api/heygem/task/retry',
  /** `?license_key=&limit=&offset=`: the owner's tasks, newest first. */
  history: '/api/heygem/task/history',
} as const

/** Header for idempotent submits (both submit endpoints); `request_id` in the body does the same. */
export const IDEMPOTENCY_HEADER = 'idempotency-key'
export const RequestKey = z.string().min(1).max(200)

/** Paths the gateway serves to bridges: inputs out, results in (streamed, hash-verified). */
export const RELAY_PATHS = {
  file: (hash: string) => `/api/relay/files/${hash}`,
  result: (taskId: string) => `/api/relay/tasks/${taskId}/result`,
} as const

/** Queue summary as both servers report it. Extra fields are allowed (run_server adds its own). */
export const QueueInfo = z.looseObject({
  queued: z.number().int().min(0),
  processing: z.number().int().min(0),
})
export type QueueInfo = z.infer<typeof QueueInfo>

// ---- GPU server API (run_server) ----

export const CheckFilesRequest = z.object({
  files: z
    .array(z.object({ hash: Md5, ext: Ext }))
    .min(1)
    .max(100),
})
export type CheckFilesRequest = z.infer<typeof CheckFilesRequest>
/** md5 → present? */
export const CheckFilesData = z.record(z.string(), z.boolean())

export const UploadFileData = z.object({
  hash: Md5,
  ext: Ext,
  size: z.number().int().min(0),
  /** false when the bytes did not match the claimed hash; `hash` is then the real one. */
  hash_matched: z.boolean(),
})
export type UploadFileData = z.infer<typeof UploadFileData>

export const GpuSubmitRequest = z.object({
  audio_hash: Md5,
  audio_ext: Ext,
  video_hash: Md5,
  video_ext: Ext,
  license_key: z.string().min(1).max(200).optional(),
  /** Ours, not run_server's: a repeated submit with the same id returns the same task. */
  request_id: z.string().min(1).max(200).optional(),
})
export type GpuSubmitRequest = z.infer<typeof GpuSubmitRequest>

export const GpuSubmitData = z.object({ task_id: z.string().min(1), queue: QueueInfo })

export const ProgressData = z.object({
  task_id: z.string().min(1),
  status: ServiceStatus,
  progress: Progress,
  message: z.string(),
  queue_position: z.number().int().min(0),
  current_frame: z.number().int().min(0).optional(),
  total_frames: z.number().int().min(0).optional(),
  eta_seconds: z.number().min(0).optional(),
  result_url: z.string().nullable().optional(),
  error_msg: z.string().nullable().optional(),
})
export type ProgressData = z.infer<typeof ProgressData>

export const HealthReply = z.looseObject({
  code: z.number().int(),
  msg: z.string(),
  initialized: z.boolean(),
  queue: QueueInfo,
})
export type HealthReply = z.infer<typeof HealthReply>

// ---- The seed's task API ----

export const TaskSubmitRequest = z.object({
  audio_hash: Md5,
  audio_ext: Ext,
  video_hash: Md5,
  video_ext: Ext,
  license_key: z.string().min(1).max(200),
  /** A repeated submit with the same id (per license key) returns the same task. */
  request_id: z.string().min(1).max(200).optional(),
})

export const TaskIdRequest = z.object({ task_id: TaskId })
export type TaskSubmitRequest = z.infer<typeof TaskSubmitRequest>

export const TaskSubmitData = z.object({
  task_id: TaskId,
  /** `done`: an identical task finished earlier and its result is returned at once. */
  status: z.enum(['submitted', 'queued', 'done']),
  msg: z.string(),
  queue_position: z.number().int().min(0),
  eta_seconds: z.number().min(0),
  result_url: z.string().nullable().optional(),
})
export type TaskSubmitData = z.infer<typeof TaskSubmitData>

export const TaskStatusData = z.object({
  task_id: TaskId,
  status: TaskState,
  progress: Progress,
  result_url: z.string().nullable(),
  error_msg: z.string().nullable(),
  queue_position: z.number().int().min(0),
  eta_seconds: z.number().min(0),
  msg: z.string(),
})
export type TaskStatusData = z.infer<typeof TaskStatusData>

/** What a bridge gets back after streaming a result to the gateway. */
export const ResultStored = FileRef
