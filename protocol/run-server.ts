/**
 * What the GPU machine's run_server answers (docs/design.md §8), as the bridge reads it. These are
 * the real program's replies, not the gateway's: `msg` is absent on most of them, the upload
 * answers only `{hash, server_path}`, task ids are its own. Every schema is lenient: extra keys
 * pass, optional ones may be missing, and a reply shape is never a reason to fail an attempt.
 */
import { z } from 'zod'

/**
 * run_server's words for a job (`status` in its progress and queue replies). They appear only
 * here, in the run-server adapter (which maps them to the relay's `Stage`) and in the gateway's
 * run_server-compatible replies (which map stages back). `encoding` is in its list though the
 * current version never produces it.
 */
export const RunServerStatus = z.enum([
  'queued',
  'processing',
  'synthesizing',
  'encoding',
  'done',
  'error',
])
export type RunServerStatus = z.infer<typeof RunServerStatus>

/** `{code, msg?, data?}`: run_server leaves `msg` out of most successful replies. */
export const RunServerEnvelope = z.looseObject({
  code: z.number(),
  msg: z.string().optional(),
  data: z.unknown().optional(),
})
export type RunServerEnvelope = z.infer<typeof RunServerEnvelope>

/** `GET /api/heygem/health` (never needs auth). `relay: true` marks a gpu-relay gateway. */
export const RunServerHealth = z.looseObject({
  code: z.number(),
  initialized: z.unknown().optional(),
  relay: z.unknown().optional(),
})
export type RunServerHealth = z.infer<typeof RunServerHealth>

/** `data` of check_files: hash → present. Anything not `true` counts as missing. */
export const RunServerCheckFiles = z.record(z.string(), z.unknown()).catch({})

/** `data` of upload_file: the real md5 of what it stored (it renames a mismatched upload). */
export const RunServerUpload = z.looseObject({ hash: z.string().optional() })

/** `data` of submit; `cached: true` is a cache hit, already done. */
export const RunServerSubmit = z.looseObject({
  task_id: z.union([z.string().min(1), z.number()]).transform(String),
  cached: z.boolean().optional(),
})
export type RunServerSubmit = z.infer<typeof RunServerSubmit>

const count = z.number().min(0).catch(0)

/** `data` of progress. `error` holds the engine's reason when `status` is `error`. */
export const RunServerProgress = z.looseObject({
  status: z.string(),
  progress: z.number().catch(0),
  message: z.string().catch(''),
  error: z.string().nullable().catch(null).optional(),
  current_frame: count.optional(),
  total_frames: count.optional(),
})
export type RunServerProgress = z.infer<typeof RunServerProgress>

/** run_server's `Authorization`: it strips a `Bearer ` prefix, so the bearer form always works. */
export function runServerAuthHeader(secret: string | null): Record<string, string> {
  return secret === null ? {} : { authorization: `Bearer ${secret}` }
}
