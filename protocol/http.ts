/**
 * HTTP shapes (docs/design.md §7). The same envelope everywhere: `{code, msg, data}`; `code` 0 is success.
 * The GPU-server-compatible paths are spoken both by the GPU machine's run_server and by the gateway,
 * so the PC app only changes its URL.
 */
import { z } from 'zod'
import { Ext, FileRef, Md5, Progress, TaskId } from './common.js'
import { RunServerStatus } from './run-server.js'
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
  /** Legacy: multipart `audio` and `video` in one request, queued like a submit. */
  upload: '/api/heygem/upload',
} as const

/** run_server's asset API (voices and avatars kept per license key), served by the gateway too. */
export const ASSET_PATHS = {
  upload: '/api/asset/upload',
  list: '/api/asset/list',
  delete: '/api/asset/delete',
} as const

/** Paths of the seed's task API. */
export const TASK_PATHS = {
  submit: '/api/heygem/task/submit',
  status: '/api/heygem/task/status',
  cancel: '/api/heygem/task/cancel',
  retry: '/api/heygem/task/retry',
  /** `?license_key=&limit=&offset=`: the owner's tasks, newest first. */
  history: '/api/heygem/task/history',
  /**
   * `?task_id=`: server-sent events for one task (gateway/routes/task-events.ts), each an event
   * `status` whose data is a TaskStatusData; resumable with `Last-Event-ID` (the outbox id).
   */
  events: '/api/heygem/task/events',
} as const

/** The SSE event name of the task event stream: its data is a TaskStatusData. */
export const TASK_EVENT_STATUS = 'status'
/** The longest `webhook_url` a submit may carry. */
export const WEBHOOK_URL_MAX_LENGTH = 2048

/** Header for idempotent submits (both submit endpoints); `request_id` in the body does the same. */
export const IDEMPOTENCY_HEADER = 'idempotency-key'
export const RequestKey = z.string().min(1).max(200)

/** Paths the gateway serves to bridges: inputs out, results in (streamed, hash-verified). */
export const RELAY_PATHS = {
  file: (hash: string) => `/api/relay/files/${hash}`,
  result: (taskId: string) => `/api/relay/tasks/${taskId}/result`,
} as const

/**
 * Queue summary as both servers report it: run_server's four keys (`total_tasks`, `processing`,
 * `queued`, `max_concurrent`); the gateway adds its own (`gpus_online`, `eta_seconds`, …).
 */
export const QueueInfo = z.looseObject({
  queued: z.number().int().min(0),
  processing: z.number().int().min(0),
  total_tasks: z.number().int().min(0).optional(),
  max_concurrent: z.number().int().min(0).optional(),
})
export type QueueInfo = z.infer<typeof QueueInfo>

/**
 * A file's name in the pool as callers send it. run_server takes any string (the H5 app uploads
 * under `tmp_<time>_<rand>` and gets the real md5 back), so any bounded string is accepted; an
 * md5 is normalised to lower case, anything else is simply never found.
 */
export const FileHash = z
  .string()
  .trim()
  .max(200)
  .transform((s) => (/^[0-9a-fA-F]{32}$/.test(s) ? s.toLowerCase() : s))

/** An extension, or `fallback` when it is missing or empty (a file name without one). */
function extOr(fallback: string) {
  return z
    .union([z.literal(''), Ext])
    .optional()
    .transform((v) => (v === undefined || v === '' ? fallback : v))
}

// ---- GPU server API (run_server) ----

/** Any hash string and any extension, as run_server; `files: []` (or none) answers `{}`. */
export const CheckFilesRequest = z.object({
  files: z
    .array(z.object({ hash: FileHash, ext: z.string().max(32).optional() }))
    .max(100)
    .default([]),
})
export type CheckFilesRequest = z.infer<typeof CheckFilesRequest>
/** md5 → present? */
export const CheckFilesData = z.record(z.string(), z.boolean())

export const UploadFileData = z.object({
  /** The real md5 of the bytes, whatever `hash` the upload claimed. */
  hash: Md5,
  /** run_server's key: where the file lies in its store (`store/{hash}{ext}`). Always sent by the gateway. */
  server_path: z.string().optional(),
  ext: Ext,
  size: z.number().int().min(0),
  /** false when the bytes did not match the claimed hash; `hash` is then the real one. */
  hash_matched: z.boolean(),
})
export type UploadFileData = z.infer<typeof UploadFileData>

/**
 * As run_server takes it: extensions default to `.wav` / `.mp4`, `license_key` may be `""` (the
 * task then has no owner), extra keys (`sender_fd`…) are ignored. Empty hashes parse (as `""`) so
 * the route can answer run_server's own message for them.
 */
export const GpuSubmitRequest = z.object({
  audio_hash: FileHash.default(''),
  audio_ext: extOr('.wav'),
  video_hash: FileHash.default(''),
  video_ext: extOr('.mp4'),
  license_key: z.string().trim().max(200).optional(),
  /** Ours, not run_server's: a repeated submit with the same id returns the same task. */
  request_id: z.string().min(1).max(200).optional(),
  /** Ours: POSTed the task's status when it ends (README "Webhooks"); `""` is none. */
  webhook_url: z.string().max(WEBHOOK_URL_MAX_LENGTH).optional(),
})
export type GpuSubmitRequest = z.infer<typeof GpuSubmitRequest>

export const GpuSubmitData = z.looseObject({
  task_id: z.string().min(1),
  queue: QueueInfo,
  /** An identical task finished earlier: this one is done at once (msg `缓存命中，直接返回`). */
  cached: z.boolean().optional(),
})
export type GpuSubmitData = z.infer<typeof GpuSubmitData>

/** `GET /api/heygem/queue`: the counts, and (only the caller's own) tasks. */
export const QueueTask = z.object({
  task_id: z.string(),
  status: RunServerStatus,
  progress: Progress,
  /** Epoch seconds, as run_server. */
  created_at: z.number(),
})
export type QueueTask = z.infer<typeof QueueTask>

export const ProgressData = z.object({
  task_id: z.string().min(1),
  status: RunServerStatus,
  progress: Progress,
  message: z.string(),
  queue_position: z.number().int().min(0),
  current_frame: z.number().int().min(0).optional(),
  total_frames: z.number().int().min(0).optional(),
  eta_seconds: z.number().min(0).optional(),
  result_url: z.string().nullable().optional(),
  error_msg: z.string().nullable().optional(),
  /** run_server's keys: the engine's reason (`""` unless failed), epoch seconds (0 when unset). */
  error: z.string().optional(),
  created_at: z.number().optional(),
  started_at: z.number().optional(),
  finished_at: z.number().optional(),
  queue: QueueInfo.optional(),
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

/** As the GPU-API submit, lenient the same way: `license_key: ""` is a task without an owner. */
export const TaskSubmitRequest = z.object({
  audio_hash: FileHash.default(''),
  audio_ext: extOr('.wav'),
  video_hash: FileHash.default(''),
  video_ext: extOr('.mp4'),
  license_key: z.string().trim().max(200).default(''),
  /** A repeated submit with the same id (per license key) returns the same task. */
  request_id: z.string().min(1).max(200).optional(),
  /** POSTed the task's status when it ends (README "Webhooks"); `""` is none. */
  webhook_url: z.string().max(WEBHOOK_URL_MAX_LENGTH).optional(),
})

export const TaskIdRequest = z.object({ task_id: TaskId })
/** What a caller sends (defaults may be left out). */
export type TaskSubmitRequest = z.input<typeof TaskSubmitRequest>

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

/**
 * The reply to a second result for one task attempt (409 `RESULT_ALREADY_STORED`): it names the
 * result stored first, so a bridge that lost that reply learns it (docs/design.md §6).
 */
export const ResultAlreadyStored = z.object({
  code: z.literal(409),
  data: FileRef.extend({ error: z.literal('RESULT_ALREADY_STORED') }),
})

// ---- Assets (run_server's /api/asset/*) ----

export const AssetType = z.enum(['voice', 'avatar'])
export type AssetType = z.infer<typeof AssetType>

/** Reply of `POST /api/asset/upload`. */
export const AssetData = z.object({
  id: z.number().int(),
  name: z.string(),
  asset_type: AssetType,
  file_hash: Md5,
  file_ext: z.string(),
  file_size: z.number().int().min(0),
})
export type AssetData = z.infer<typeof AssetData>

/** One row of `GET /api/asset/list`, newest first. */
export const AssetListItem = AssetData.extend({
  /** Epoch seconds, as run_server. */
  created_at: z.number(),
  /** Whole days until it expires (rounded down). */
  days_left: z.number().int().min(0),
})
export type AssetListItem = z.infer<typeof AssetListItem>

export const AssetDeleteRequest = z.object({
  id: z.coerce.number().int().min(0).default(0),
  license_key: z.string().trim().max(200).default(''),
})
