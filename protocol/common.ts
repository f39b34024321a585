import { z } from 'zod'

/** Every MQTT payload carries the contract version. */
export const PROTOCOL_VERSION = 1 as const
export const Version = z.literal(PROTOCOL_VERSION)

/** md5 of a file's bytes, lower-case hex: the file's name everywhere (docs/design.md §6). */
export const Md5 = z
  .string()
  .regex(/^[0-9a-fA-F]{32}$/, 'must be 32 hex characters (md5)')
  .transform((s) => s.toLowerCase())

/** A file extension, normalised to a lower-case leading dot: "wav" and ".WAV" both become ".wav". */
export const Ext = z
  .string()
  .regex(/^\.?[A-Za-z0-9]{1,10}$/, 'must be a short extension such as .wav or .mp4')
  .transform((s) => (s.startsWith('.') ? s : `.${s}`).toLowerCase())

/** GPU and client ids are single MQTT topic levels: no wildcards, no slashes. */
export const GpuId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, _ and - only')

/** Task ids are UUIDs (random, 122 bits). */
export const TaskId = z.uuid()

/**
 * A kind of work (docs/design.md §10): a bridge declares the types its GPU service runs and is
 * offered only those. One MQTT topic level: lower-case letters, digits and `-`.
 */
export const TASK_TYPE_PATTERN = /^[a-z0-9][a-z0-9-]{0,39}$/
export const TaskType = z.string().regex(TASK_TYPE_PATTERN, 'lower-case letters, digits and - only')
export type TaskType = z.infer<typeof TaskType>
/** The one type the relay has today: a HeyGem lip-sync render (audio + video → video). */
export const DEFAULT_TASK_TYPE = 'heygem'

export const Attempt = z.number().int().min(1)
export const Seq = z.number().int().min(1)
export const Progress = z.number().min(0).max(100)
export const IsoTime = z.iso.datetime({ offset: true })

export const FileRef = z.object({
  hash: Md5,
  ext: Ext,
  size: z.number().int().min(0),
})
export type FileRef = z.infer<typeof FileRef>

/**
 * The relay's own words for how far a running task has got (docs/design.md §8): every adapter maps
 * its service's words to these, and the gateway stores and reports them. In order:
 * - `preparing`: the inputs are moving to the GPU service;
 * - `waiting`: the service has the job, queued behind others;
 * - `starting`: the service is preparing the job (reading the video, preprocessing);
 * - `rendering`: frames are being synthesized;
 * - `encoding`: the result is being written out.
 */
export const Stage = z.enum(['preparing', 'waiting', 'starting', 'rendering', 'encoding'])
export type Stage = z.infer<typeof Stage>
